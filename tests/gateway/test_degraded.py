"""What the operator sees when things go wrong, against real services: Redis stopped (JSON 503
on every /api route, one log line per change, the dashboard's degraded banner), a camera that
stops (result age, stale marker, "camera offline" once its thumbnail expired), a wrong token
("token rejected"), a frame that lands after its result. Browser checks poll for conditions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page

from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.sink.service import RedisSink
from streamsense.services.sink.settings import SinkSettings
from tests.conftest import wait_for
from tests.gateway.browser import browser_page
from tests.sink import factory
from tests.sink.test_outage import OwnRedis

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "the-right-token-4711"
STALE_AFTER_S = 2.0
THUMB_TTL_S = 3
API_ROUTES = [
    "/api/sources",
    "/api/stats",
    "/api/models",
    "/api/latest/detect/cam-s",
    "/api/results/sentiment/chat",
    "/api/thumbnail/cam-s",
]


@dataclass
class Stack:
    redis: OwnRedis
    sink_settings: SinkSettings
    url: str


@pytest.fixture(scope="module")
def stack_down(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Kafka of the session, a Redis of our own (to stop), the real sink and gateway."""
    node = OwnRedis(tmp_path_factory.mktemp("redis"))
    node.start()
    sink_settings = factory.sink_settings(
        stack["bootstrap"], node.url, "degraded", sink_thumb_ttl_s=THUMB_TTL_S
    )
    sink = RedisSink(sink_settings)
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    gw = GatewaySettings(
        redis_url=node.url,
        redis_prefix=sink_settings.redis_prefix,
        gateway_port=0,
        gateway_stale_after_s=STALE_AFTER_S,
        model_store=Path(tmp_path_factory.mktemp("empty")) / "none",
    )
    try:
        with ServerThread(gw) as server:
            yield Stack(node, sink_settings, server.url)
    finally:
        if node.proc is None:
            node.start()
        sink.stop()
        thread.join(60)
        node.kill()


def _restart(node: OwnRedis) -> None:
    if node.proc is not None:
        node.kill()
    node.start()


def test_every_api_route_is_a_json_503_while_redis_is_down_logged_once(
    stack_down: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with httpx.Client(base_url=stack_down.url, timeout=20) as http:
        assert http.get("/api/sources").status_code == 200
        stack_down.redis.kill()
        try:
            for _ in range(3):  # the dashboard polls: repeated calls log nothing new
                for path in API_ROUTES:
                    r = http.get(path)
                    assert r.status_code == 503, path
                    assert r.json() == {"error": "redis unavailable"}, path
                    assert r.headers["retry-after"] == "2"
                    assert r.headers["content-type"] == "application/json"
            assert http.get("/healthz").status_code == 503
            assert http.post("/api/live/ticket").status_code == 200, "needs no Redis"
        finally:
            stack_down.redis.start()
        wait_for(lambda: http.get("/api/sources").status_code == 200, 30, "the API back")
    mine = [r for r in caplog.records if r.name == "streamsense.services.gateway.errors"]
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in mine] == [
        ("WARNING", "redis unavailable (ConnectionError"),
        ("INFO", "redis is back"),
    ]
    assert not [r for r in caplog.records if r.name.startswith("uvicorn") and r.exc_info], (
        "no traceback per request"
    )


def _camera_frame(s: Stack, seq: int) -> None:
    jpeg, headers = factory.jpeg_frame("cam-s", seq)
    factory.produce(s.sink_settings, [("frames", jpeg, "cam-s", headers)])
    factory.produce(
        s.sink_settings,
        [factory.result_record(factory.detection("cam-s", seq, [(0.2, 0.2, 0.8, 0.8)]))],
    )


def test_dashboard_marks_a_stopped_camera_and_a_redis_outage(stack_down: Stack) -> None:
    errors: list[str] = []
    with browser_page(errors) as page:
        page.goto(stack_down.url + "/")
        page.wait_for_selector("#conn.on")
        assert page.locator("#banner").is_hidden()
        tile = '.tile[data-camera="cam-s"]'
        # A live camera: a fresh result with its age, not stale, the frame shown.
        _camera_frame(stack_down, 1)
        page.wait_for_selector(f'{tile}[data-thumb="1"][data-stale="0"][data-boxes="1"]')
        assert page.locator(f"{tile} .age").text_content().startswith("result ")
        assert page.locator(f"{tile} .badge.stale-mark").is_hidden()
        # The camera stops: stale after STALE_AFTER_S, offline once the thumbnail expired.
        page.wait_for_selector(f'{tile}[data-stale="1"]')
        assert page.locator(f"{tile} .badge.stale-mark").is_visible()
        page.wait_for_selector(f'{tile}[data-offline="1"]', timeout=(THUMB_TTL_S + 30) * 1000)
        info = page.locator(f"{tile} .info").text_content() or ""
        assert info == "camera offline", info
        age = page.locator(f"{tile} .age").text_content() or ""
        assert age.startswith("result ") and age.endswith(" old"), age
        # Redis stops: a banner says so, the pill is not green.
        stack_down.redis.kill()
        try:
            page.wait_for_selector("#banner:not([hidden])")
            assert "Redis is unavailable" in (page.locator("#banner").text_content() or "")
            page.wait_for_selector("#conn.warn")
        finally:
            stack_down.redis.start()
        page.wait_for_selector("#banner", state="hidden", timeout=60_000)
        page.wait_for_selector("#conn.on")
        # The camera comes back: fresh again.
        _camera_frame(stack_down, 2)
        page.wait_for_selector(f'{tile}[data-offline="0"][data-stale="0"][data-thumb="1"]')
    assert errors == [], errors


def test_dashboard_shows_a_frame_that_lands_after_its_result_while_the_result_is_fresh(
    stack_down: Stack,
) -> None:
    """The frame and its result travel on different topics, so the sink may write the result
    first: the page looks for the frame again soon, not only at its slow expiry check."""
    errors: list[str] = []
    tile = '.tile[data-camera="cam-late"]'
    with browser_page(errors) as page:
        page.goto(stack_down.url + "/")
        page.wait_for_selector("#conn.on")
        det = factory.detection("cam-late", 1, [(0.2, 0.2, 0.8, 0.8)])
        factory.produce(stack_down.sink_settings, [factory.result_record(det)])
        page.wait_for_selector(f'{tile}[data-thumb="0"][data-stale="0"]')
        time.sleep(0.5)  # the frame lands second (what is tested, not a wait for a condition)
        jpeg, headers = factory.jpeg_frame("cam-late", 1)
        factory.produce(stack_down.sink_settings, [("frames", jpeg, "cam-late", headers)])
        page.wait_for_selector(f'{tile}[data-thumb="1"][data-stale="0"]')
    assert errors == [], errors


@pytest.fixture(scope="module")
def secured(stack: dict[str, str]) -> Iterator[str]:
    settings = GatewaySettings(
        redis_url=stack["redis_url"], redis_prefix="ssdeg", gateway_port=0, gateway_token=TOKEN
    )
    with ServerThread(settings) as server:
        yield server.url


def _use_token(page: Page, token: str) -> None:
    page.fill("#token-input", token)
    page.click("#auth button")


def test_dashboard_says_token_rejected_and_keeps_tokens_out_of_urls(secured: str) -> None:
    urls: list[str] = []
    errors: list[str] = []
    with browser_page(errors) as page:
        page.on("request", lambda req: urls.append(req.url))
        page.on("websocket", lambda ws: urls.append(ws.url))
        page.goto(secured + "/")
        page.wait_for_selector("#auth:not([hidden])")
        assert page.locator("#conn").text_content() == "token rejected"
        assert page.locator("#auth-label").text_content() == "gateway token required"
        _use_token(page, "a-wrong-token-123")
        # A function, not a bare expression: Playwright re-evaluates a bare expression with
        # eval() on each poll, which the dashboard's CSP (no 'unsafe-eval') refuses.
        page.wait_for_function(
            "() => document.getElementById('auth-label').textContent.startsWith('token rejected')"
        )
        assert page.locator("#conn").text_content() == "token rejected"
        assert page.locator("#cameras .empty").text_content() != "no camera results yet"
        _use_token(page, TOKEN)
        page.wait_for_selector("#conn.on")
        assert page.locator("#auth").is_hidden()
    assert errors == [], errors
    assert any("/ws/live?ticket=" in u for u in urls), urls
    assert not [u for u in urls if TOKEN in u or "token=" in u], urls
    assert urlsplit(secured).netloc in urls[0]
