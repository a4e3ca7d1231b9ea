"""``/ws/live`` admits at most ``STREAMSENSE_GATEWAY_MAX_LIVE_CLIENTS`` clients (the real gateway).

Before: any number; 3,000 handshakes from one loopback process took 3,000 sockets and grew the
gateway by 100 MB in 4 s, and nothing but the process' file limit (then accept() failing for
everyone, Redis reconnects included) stopped more.
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack

import orjson
import pytest
from websockets.sync.client import connect

from streamsense.services.gateway.security import CSP
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

LIMIT = 3


@pytest.fixture(scope="module")
def gateway(stack: dict[str, str]) -> Iterator[ServerThread]:
    settings = GatewaySettings(
        redis_url=stack["redis_url"],
        redis_prefix="sslimit",
        gateway_port=0,
        gateway_max_live_clients=LIMIT,
    )
    with ServerThread(settings) as server:
        yield server


def _handshake(port: int) -> tuple[int, str, bytes]:
    """Status, head and body of a raw handshake's answer."""
    key = base64.b64encode(os.urandom(16))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"GET /ws/live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key
            + b"\r\n\r\n"
        )  # fmt: skip
        data = b""
        while b"\r\n\r\n" not in data or (b" 503 " in data[:20] and not data.endswith(b"}")):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    return int(text.split(" ", 2)[1]), text.lower(), body


def test_handshakes_past_the_limit_get_503_and_a_freed_place_is_taken(
    gateway: ServerThread,
) -> None:
    port = gateway.port
    with ExitStack() as stack:
        clients = []
        for _ in range(LIMIT):
            ws = stack.enter_context(connect(f"ws://127.0.0.1:{port}/ws/live", open_timeout=10))
            assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
            clients.append(ws)
        status, head, body = _handshake(port)
        assert status == 503, head
        assert "retry-after: 5" in head and f"content-security-policy: {CSP.lower()}" in head
        assert orjson.loads(body) == {"error": f"too many live clients ({LIMIT}); try again later"}
        clients[0].close()  # its place frees once the gateway sees it go
        wait_for(lambda: _handshake(port)[0] == 101, 10, "a place after one client left")
