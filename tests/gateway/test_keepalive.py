"""A WebSocket client that stops answering is closed by the gateway's keepalive, and its queue
goes with it (``STREAMSENSE_GATEWAY_WS_PING_S``)."""

from __future__ import annotations

import base64
import os
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import wait_for
from tests.gateway.conftest import Pipeline

pytestmark = pytest.mark.integration

WS_PING_S = 1.0


def _live_clients(p: Pipeline) -> int:
    return int(httpx.get(f"{p.url}/api/stats", timeout=10).json()["live_clients"])


def test_a_client_that_never_answers_pings_is_closed(pipeline: Pipeline) -> None:
    parts = urlsplit(pipeline.url)
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            (
                f"GET /ws/live HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 101"), "the upgrade is accepted"
        wait_for(lambda: _live_clients(pipeline) == 1, 10, "the client registered")
        # From here on the client reads nothing and sends no pong.
        wait_for(lambda: _live_clients(pipeline) == 0, 20, "the silent client closed")
