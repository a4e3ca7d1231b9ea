"""Bearer-token auth: required off loopback; with a token set, every data route, /docs,
/openapi.json and /metrics need it in the Authorization header (never a URL), and browsers
open /ws/live with a single-use ticket."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from pydantic import ValidationError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from streamsense.services.exceptions import ConfigError
from streamsense.services.gateway.auth import Tickets
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings

TOKEN = "s3cret-token-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_binding_off_loopback_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="not loopback"):
        GatewaySettings(gateway_host="0.0.0.0")
    with pytest.raises(ConfigError, match="at least 12"):
        GatewaySettings(gateway_host="0.0.0.0", gateway_token="short")
    assert GatewaySettings(gateway_host="0.0.0.0", gateway_token=TOKEN).gateway_token is not None
    assert GatewaySettings(gateway_host="::1").gateway_token is None
    assert GatewaySettings(gateway_host="localhost").gateway_token is None


def test_host_and_origin_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewaySettings().served_hosts == ("localhost", "127.0.0.1", "[::1]")
    monkeypatch.setenv("STREAMSENSE_GATEWAY_ALLOWED_HOSTS", "Streams.Example.com, *.lan, ::1")
    monkeypatch.setenv("STREAMSENSE_GATEWAY_ALLOWED_ORIGINS", "https://ops.example.com/")
    s = GatewaySettings(gateway_host="10.0.0.5", gateway_token=TOKEN)
    assert s.served_hosts == ("streams.example.com", "*.lan", "[::1]", "10.0.0.5")
    assert s.gateway_allowed_origins == ("https://ops.example.com",)
    # A wildcard bind address is no name a browser uses: it is not added.
    anywhere = GatewaySettings(gateway_host="0.0.0.0", gateway_token=TOKEN)
    assert "0.0.0.0" not in anywhere.served_hosts
    monkeypatch.setenv("STREAMSENSE_GATEWAY_ALLOWED_HOSTS", "evil.com/path")
    with pytest.raises(ValidationError, match="ALLOWED_HOSTS"):
        GatewaySettings()
    monkeypatch.setenv("STREAMSENSE_GATEWAY_ALLOWED_HOSTS", "localhost")
    monkeypatch.setenv("STREAMSENSE_GATEWAY_ALLOWED_ORIGINS", "https://x.example.com/app")
    with pytest.raises(ValidationError, match="ALLOWED_ORIGINS"):
        GatewaySettings()


def test_tickets_are_single_use_and_expire() -> None:
    now = [0.0]
    book = Tickets(ttl_s=30.0, clock=lambda: now[0])
    first, second = book.issue(), book.issue()
    assert len(first) >= 40 and first != second
    assert book.redeem(first) is True
    assert book.redeem(first) is False, "spent"
    now[0] = 30.0
    assert book.redeem(second) is False, "expired"
    assert book.redeem(None) is False and book.redeem("made-up") is False


@pytest.fixture(scope="module")
def secured(stack: dict[str, str]) -> Iterator[str]:
    settings = GatewaySettings(
        redis_url=stack["redis_url"], redis_prefix="ssauth", gateway_port=0, gateway_token=TOKEN
    )
    with ServerThread(settings) as server:
        yield server.url


@pytest.mark.integration
def test_every_route_with_data_needs_the_token_in_the_header(secured: str) -> None:
    guarded = ["/api/sources", "/api/stats", "/api/models", "/api/cameras"]
    guarded += ["/api/latest/detect/cam"]
    guarded += ["/docs", "/openapi.json", "/metrics"]
    with httpx.Client(base_url=secured, timeout=10) as http:
        for path in guarded:
            missing = http.get(path)
            assert missing.status_code == 401, path
            assert missing.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer" in missing.json()["detail"]
            wrong = http.get(path, headers={"Authorization": "Bearer wrong-token-xx"})
            assert wrong.status_code == 401, path
            # with the token the route itself answers (nothing is stored for "cam": 404)
            expected = 404 if path.endswith("/cam") else 200
            assert http.get(path, headers=BEARER).status_code == expected, path
        # A token in the URL is not accepted (URLs reach logs, history and Referer headers).
        assert http.get("/api/sources", params={"token": TOKEN}).status_code == 401
        assert http.post("/api/live/ticket").status_code == 401
        # Probes and the static dashboard stay open; the data behind them does not.
        assert http.get("/healthz").status_code == 200
        assert http.get("/").status_code == 200
        assert http.get("/static/dashboard.js").status_code == 200
        schema = http.get("/openapi.json", headers=BEARER).json()
        assert "401" in schema["paths"]["/api/sources"]["get"]["responses"]
        assert "503" in schema["paths"]["/api/sources"]["get"]["responses"]


@pytest.mark.integration
def test_websocket_needs_the_bearer_header_or_a_single_use_ticket(secured: str) -> None:
    ws_url = f"ws://{urlsplit(secured).netloc}/ws/live"
    for query in ("", f"?token={TOKEN}", "?ticket=made-up-ticket"):
        with pytest.raises(InvalidStatus) as refused:
            with connect(ws_url + query):
                pass
        assert refused.value.response.status_code == 403, query
    with connect(ws_url, additional_headers=BEARER) as ws:
        assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"

    reply = httpx.post(f"{secured}/api/live/ticket", headers=BEARER, timeout=10)
    assert reply.status_code == 200 and reply.json()["expires_in_s"] == 30.0
    ticket = reply.json()["ticket"]
    with connect(f"{ws_url}?ticket={ticket}") as ws:
        hello = orjson.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello" and hello["redis"] is True
    with pytest.raises(InvalidStatus):  # spent
        with connect(f"{ws_url}?ticket={ticket}"):
            pass
