"""Bearer-token auth: required off loopback, applied to REST and WebSocket when configured."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from streamsense.services.exceptions import ConfigError
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings

TOKEN = "s3cret-token-for-tests"


def test_binding_off_loopback_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="not loopback"):
        GatewaySettings(gateway_host="0.0.0.0")
    with pytest.raises(ConfigError, match="at least 12"):
        GatewaySettings(gateway_host="0.0.0.0", gateway_token="short")
    assert GatewaySettings(gateway_host="0.0.0.0", gateway_token=TOKEN).gateway_token is not None
    assert GatewaySettings(gateway_host="::1").gateway_token is None
    assert GatewaySettings(gateway_host="localhost").gateway_token is None


@pytest.fixture(scope="module")
def secured(stack: dict[str, str]) -> Iterator[str]:
    settings = GatewaySettings(
        redis_url=stack["redis_url"], redis_prefix="ssauth", gateway_port=0, gateway_token=TOKEN
    )
    with ServerThread(settings) as server:
        yield server.url


@pytest.mark.integration
def test_rest_needs_the_token_as_header_or_query(secured: str) -> None:
    with httpx.Client(base_url=secured, timeout=10) as http:
        for path in ("/api/sources", "/api/stats", "/api/models", "/api/latest/detect/cam"):
            missing = http.get(path)
            assert missing.status_code == 401, path
            assert missing.headers["www-authenticate"] == "Bearer"
            assert (
                http.get(path, headers={"Authorization": "Bearer wrong-token-xx"}).status_code
                == 401
            )
        assert (
            http.get("/api/sources", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
            == 200
        )
        assert http.get("/api/sources", params={"token": TOKEN}).status_code == 200
        assert http.get("/api/sources", params={"token": "nope"}).status_code == 401
        # Probes and the static dashboard stay open; the data behind them does not.
        assert http.get("/healthz").status_code == 200
        assert http.get("/").status_code == 200
        schema = http.get("/openapi.json").json()
        assert "401" in schema["paths"]["/api/sources"]["get"]["responses"]


@pytest.mark.integration
def test_websocket_needs_the_token(secured: str) -> None:
    ws_url = f"ws://{urlsplit(secured).netloc}/ws/live"
    with pytest.raises(InvalidStatus) as refused:
        with connect(ws_url):
            pass
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        with connect(ws_url + "?token=wrong-token-xx"):
            pass
    with connect(f"{ws_url}?token={TOKEN}") as ws:
        assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
