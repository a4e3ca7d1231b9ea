"""The gateway never reads a listing whole: the sets of source ids and the camera status hash
grow with every id ever written (a producer inventing ids makes them as large as it likes), so
each answer lists at most STREAMSENSE_GATEWAY_MAX_LISTED ids and says how many there are."""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis

from streamsense.schemas.registry import encode
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.serving.writes import LayoutWriter
from tests.gateway.conftest import camera_status

pytestmark = pytest.mark.integration
MANY = 60


@pytest.fixture
def crowded(stack: dict[str, str]) -> str:
    """A serving layer with MANY detect sources, MANY sentiment sources, MANY thumbnails and
    MANY camera statuses; its prefix."""
    prefix = f"cap{uuid.uuid4().hex[:8]}"
    keys = RedisKeys(prefix)
    writer = LayoutWriter(keys)
    r = redis.Redis.from_url(stack["redis_url"])
    pipe = r.pipeline(transaction=False)
    for i in range(MANY):
        writer.source(pipe, "detect", f"cam-{i:03d}")
        writer.source(pipe, "sentiment", f"log-{i:03d}")
        pipe.sadd(keys.cameras, f"cam-{i:03d}")
        value = encode(camera_status(f"cam-{i:03d}"))
        writer.camera_status(pipe, f"cam-{i:03d}", value, written_ms=1)
    pipe.execute()
    r.close()
    return prefix


def _answers(stack: dict[str, str], prefix: str, cap: int) -> tuple[dict, dict, int, int]:
    settings = GatewaySettings(redis_url=stack["redis_url"], redis_prefix=prefix, gateway_port=0,
                               gateway_max_listed=cap)  # fmt: skip
    with ServerThread(settings) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        sources, cameras = http.get("/api/sources"), http.get("/api/cameras")
        stats, models = http.get("/api/stats"), http.get("/api/models")
    assert sources.status_code == cameras.status_code == 200, (sources.text, cameras.text)
    return sources.json(), cameras.json(), stats.status_code, models.status_code


def test_listings_are_cut_at_the_limit_and_say_how_many_there_are(
    stack: dict[str, str], crowded: str
) -> None:
    sources, cameras, stats, models = _answers(stack, crowded, cap=25)
    assert len(sources["tasks"]["detect"]) == 25 and len(sources["tasks"]["sentiment"]) == 25
    assert len(sources["cameras"]) == 25
    assert sources["totals"] == {"detect": MANY, "segment": 0, "sentiment": MANY, "cameras": MANY}
    assert sources["truncated"] is True
    assert len(cameras["cameras"]) == 25 and cameras["total"] == MANY
    assert cameras["truncated"] is True and cameras["malformed"] == 0
    assert stats == models == 200, "the routes that sample sources read at most their own cap"


def test_listings_under_the_limit_are_whole(stack: dict[str, str], crowded: str) -> None:
    sources, cameras, _, _ = _answers(stack, crowded, cap=1000)
    assert sources["tasks"]["detect"] == [f"cam-{i:03d}" for i in range(MANY)]
    assert sources["cameras"] == [f"cam-{i:03d}" for i in range(MANY)]
    assert sources["truncated"] is False and cameras["truncated"] is False
    assert [c["camera_id"] for c in cameras["cameras"]] == sources["cameras"]
    assert cameras["total"] == MANY


@pytest.mark.slow
def test_the_dashboard_says_when_it_shows_only_some_cameras(
    stack: dict[str, str], crowded: str
) -> None:
    from tests.gateway.browser import browser_page

    settings = GatewaySettings(redis_url=stack["redis_url"], redis_prefix=crowded, gateway_port=0,
                               gateway_max_listed=25)  # fmt: skip
    errors: list[str] = []
    with ServerThread(settings) as server, browser_page(errors) as page:
        page.goto(server.url + "/")
        note = page.locator("#cameras-cut")
        note.wait_for(state="visible", timeout=20_000)
        assert note.text_content() == (
            f"states of 25 of {MANY} cameras shown (the gateway lists at most "
            "STREAMSENSE_GATEWAY_MAX_LISTED)"
        )
        assert page.locator(".tile").count() < MANY
    assert errors == [], errors
