"""Request heads are bounded in size and in time, against the real gateway over raw sockets.

Before: 200 MB of headers on one connection grew the gateway by 206 MB and were answered 200;
a 64 MB URL stalled its event loop for 2.7 s; connections that sent nothing, or one header line
every 3 s, were held for as long as the client liked (600 of them for 40 s and counting).
"""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from websockets.sync.client import connect

from streamsense.services.gateway.httpconn import MAX_HEADERS
from streamsense.services.gateway.security import CSP
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

MAX_HEAD = 8192
HEAD_TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def gateway(stack: dict[str, str]) -> Iterator[tuple[str, int]]:
    settings = GatewaySettings(
        redis_url=stack["redis_url"],
        redis_prefix="sshead",
        gateway_port=0,
        gateway_max_request_head=MAX_HEAD,
        gateway_header_timeout_s=HEAD_TIMEOUT_S,
    )
    with ServerThread(settings) as server:
        yield "127.0.0.1", server.port


def _sock(addr: tuple[str, int]) -> socket.socket:
    s = socket.create_connection(addr, timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _answer(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the one answer before the server closes."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ", 2)[1]), headers, body


def _refused(addr: tuple[str, int], request: bytes, status: int) -> str:
    with _sock(addr) as s:
        s.sendall(request)
        code, headers, body = _answer(s)
    assert code == status, (code, body)
    assert headers["content-type"] == "application/json"
    assert headers["content-security-policy"] == CSP, "refusals carry the headers too"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["connection"] == "close"
    detail: str = orjson.loads(body)["detail"]
    return detail


def test_a_head_over_the_limit_is_refused_with_the_reason(gateway: tuple[str, int]) -> None:
    big = b"X-Big: " + b"a" * MAX_HEAD + b"\r\n"
    detail = _refused(gateway, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + big, 431)
    assert f"larger than {MAX_HEAD} bytes" in detail
    url = b"/healthz?q=" + b"u" * MAX_HEAD
    detail = _refused(gateway, b"GET " + url + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414)
    assert detail.startswith("URL larger than")
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS + 1))
    detail = _refused(gateway, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many, 431)
    assert f"more than {MAX_HEADERS} header lines" in detail
    # A WebSocket handshake is a request head like any other.
    key = base64.b64encode(os.urandom(16))
    upgrade = (
        b"GET /ws/live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n"
    )
    _refused(gateway, upgrade + big + b"\r\n", 431)


def test_the_gateway_stops_reading_an_endless_head(gateway: tuple[str, int]) -> None:
    """50 MB of headers: the connection is cut after what the socket buffers hold, and the
    gateway still answers others at once."""
    line = b"X-A: " + b"a" * 60_000 + b"\r\n"
    sent = 0
    with _sock(gateway) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        with pytest.raises(OSError):  # reset (or a send timeout) once the gateway let go
            while sent < 50 * 2**20:
                s.sendall(line)
                sent += len(line)
            s.sendall(b"\r\n")
            s.recv(1)  # an answer to 50 MB of headers would be the defect
            raise AssertionError("50 MB of headers were read and answered")
    assert sent < 16 * 2**20, f"the gateway took {sent / 2**20:.0f} MB of one request head"
    r = httpx.get(f"http://{gateway[0]}:{gateway[1]}/healthz", timeout=5)
    assert r.status_code in (200, 503)


def test_a_head_just_under_the_limit_is_served(gateway: tuple[str, int]) -> None:
    cookie = "c=" + "v" * (MAX_HEAD - 1024)
    r = httpx.get(
        f"http://{gateway[0]}:{gateway[1]}/healthz", headers={"Cookie": cookie}, timeout=5
    )
    assert r.status_code in (200, 503) and "ok" in r.json()


def test_idle_and_dripping_connections_are_closed_in_time(gateway: tuple[str, int]) -> None:
    idle = [_sock(gateway) for _ in range(20)]
    drip = [_sock(gateway) for _ in range(20)]
    for s in drip:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    deadline = started + HEAD_TIMEOUT_S + 5
    while time.monotonic() < deadline and time.monotonic() - started < HEAD_TIMEOUT_S + 0.5:
        for s in drip:
            try:
                s.sendall(b"X-Drip: 1\r\n")  # well within any per-read timeout
            except OSError:
                pass
        time.sleep(0.3)
    for s in idle:
        s.settimeout(HEAD_TIMEOUT_S + 5)
        assert s.recv(100) == b"", "an idle connection is closed without an answer"
        s.close()
    for s in drip:
        s.settimeout(HEAD_TIMEOUT_S + 5)
        code, _, body = _answer(s)
        assert code == 408 and b"not complete within 1.5 s" in body, (code, body)
        s.close()
    assert time.monotonic() - started < HEAD_TIMEOUT_S + 5


def test_keep_alive_and_websockets_outlive_the_head_deadline(gateway: tuple[str, int]) -> None:
    """The deadline is for heads only: a kept-alive connection serves a second request after
    a pause, and an open WebSocket is never cut by it."""
    host, port = gateway
    with _sock(gateway) as s:
        req = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        s.sendall(req)
        assert s.recv(65536).startswith(b"HTTP/1.1 ")
        time.sleep(HEAD_TIMEOUT_S / 3)
        s.sendall(req[:20])  # the next head, slowly, then not at all
        time.sleep(HEAD_TIMEOUT_S + 0.5)
        code, _, _ = _answer(s)
        assert code == 408, "a slow second head has the same deadline as the first"
    with connect(f"ws://{host}:{port}/ws/live", open_timeout=10) as ws:
        assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
        time.sleep(HEAD_TIMEOUT_S * 2)
        assert ws.ping().wait(5), "still open, still answering"
    netloc = urlsplit(f"http://{host}:{port}").netloc
    assert httpx.get(f"http://{netloc}/healthz", timeout=5).status_code in (200, 503)


def test_a_post_body_sent_slowly_is_refused_in_time(gateway: tuple[str, int]) -> None:
    """Slow POST: a body that never completes was held for as long as the client liked."""
    head = (
        b"POST /api/feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    started = time.monotonic()
    with _sock(gateway) as s:
        s.sendall(head + b'{"text":')
        time.sleep(HEAD_TIMEOUT_S / 2)
        s.sendall(b' "slow')
        s.settimeout(HEAD_TIMEOUT_S + 5)
        code, headers, body = _answer(s)
    assert code == 408 and headers["connection"] == "close", (code, body)
    assert orjson.loads(body)["detail"] == "body not complete within 1.5 s"
    assert time.monotonic() - started < HEAD_TIMEOUT_S + 5


def test_whole_requests_in_one_write_and_large_bodies_are_not_a_large_head(
    gateway: tuple[str, int],
) -> None:
    """A request whose head and body (4x the head limit) arrive in one chunk, again and again
    on one kept-alive connection: all answered by the route, none refused as a large head
    (the first version of the head budget counted such a chunk as head)."""
    body = orjson.dumps({"text": "x" * (4 * MAX_HEAD), "label": 1})  # 422: 1 is not a label
    post = (
        b"POST /api/feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    with _sock(gateway) as s:
        for _ in range(3):
            s.sendall(post)
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                data += s.recv(65536)
            assert data.startswith(b"HTTP/1.1 422 "), data[:200]
    with httpx.Client(base_url=f"http://{gateway[0]}:{gateway[1]}", timeout=10) as http:
        for _ in range(3):
            headers = {"Content-Type": "application/json"}
            r = http.post("/api/feedback", content=body, headers=headers)
            assert r.status_code == 422, r.text
