"""Host allowlist, Origin checks, CORS, security headers and log redaction against the real
gateway. Host and Origin go over raw sockets: HTTP clients set ``Host`` from the URL, and a
browser never lets a page choose either, which is why a hostile page cannot fake them."""

from __future__ import annotations

import base64
import logging
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.sync.client import connect

from streamsense.services.gateway.security import CSP
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

TOKEN = "raw-socket-token-0123456789"
PARTNER = "https://ops.example.com"


def _raw(url: str, request: str) -> tuple[int, str]:
    """Send ``request`` as it is; the status code and the response head."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return int(head.split(" ", 2)[1]), head


def _get(url: str, host: str, path: str = "/api/stats", extra: str = "") -> tuple[int, str]:
    return _raw(url, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")


def _upgrade(url: str, host: str, origin: str | None, query: str = "") -> int:
    key = base64.b64encode(os.urandom(16)).decode()
    origin_line = f"Origin: {origin}\r\n" if origin is not None else ""
    status, _ = _raw(
        url,
        f"GET /ws/live{query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{origin_line}\r\n",
    )
    return status


@pytest.fixture(scope="module")
def gateway(stack: dict[str, str]) -> Iterator[str]:
    settings = GatewaySettings(redis_url=stack["redis_url"], redis_prefix="sssec", gateway_port=0)
    with ServerThread(settings) as server:
        yield server.url


def test_foreign_host_headers_are_refused(gateway: str) -> None:
    port = urlsplit(gateway).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
        status, _ = _get(gateway, host)
        assert status == 200, host
    # DNS rebinding: the attacker's name resolves to us, the browser sends the attacker's Host.
    for host in (f"evil.example:{port}", "rebind.127.0.0.1.nip.io", "localhost.evil.example"):
        status, head = _get(gateway, host)
        assert status == 400, host
        assert "content-security-policy" in head.lower(), "refusals carry the headers too"
        assert _upgrade(gateway, host, None) == 400, host
    # Probes keep working by loopback name; a health check by a foreign name is refused too.
    assert _get(gateway, f"evil.example:{port}", "/healthz")[0] == 400


def test_cross_site_websockets_and_posts_are_refused(gateway: str) -> None:
    netloc = urlsplit(gateway).netloc
    port = urlsplit(gateway).port
    assert _upgrade(gateway, netloc, None) == 101, "no Origin: not a browser"
    assert _upgrade(gateway, netloc, f"http://{netloc}") == 101, "same origin"
    for origin in ("http://evil.example", f"http://localhost:{port}", "http://127.0.0.1:1", "null"):
        assert _upgrade(gateway, netloc, origin) == 403, origin
    body = '{"text": "x", "label": "positive"}'
    for path in ("/api/live/ticket", "/api/feedback"):
        status, _ = _raw(
            gateway,
            f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\nOrigin: http://evil.example\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n{body}",
        )
        assert status == 403, path


def test_headers_on_every_answer_and_no_cors_unless_configured(gateway: str) -> None:
    with httpx.Client(base_url=gateway, timeout=10) as http:
        for path in ("/", "/api/sources", "/static/dashboard.js", "/healthz", "/nope"):
            r = http.get(path, headers={"Origin": "http://evil.example"})
            assert r.headers["content-security-policy"] == CSP, path
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert r.headers["x-frame-options"] == "DENY"
            assert "access-control-allow-origin" not in r.headers, path
        assert "script-src 'self';" in CSP and "connect-src 'self'" in CSP
        assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
        docs = http.get("/docs")
        assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
        assert "<script>" not in docs.text, "no inline script on /docs either"
        preflight = http.options(
            "/api/sources",
            headers={"Origin": PARTNER, "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers


def test_a_configured_origin_may_use_cors_and_the_websocket(stack: dict[str, str]) -> None:
    settings = GatewaySettings(
        redis_url=stack["redis_url"],
        redis_prefix="sssec",
        gateway_port=0,
        gateway_allowed_origins=(PARTNER,),
    )
    with ServerThread(settings) as server:
        netloc = urlsplit(server.url).netloc
        assert _upgrade(server.url, netloc, PARTNER) == 101
        assert _upgrade(server.url, netloc, "https://other.example.com") == 403
        r = httpx.get(f"{server.url}/api/sources", headers={"Origin": PARTNER}, timeout=10)
        assert r.headers["access-control-allow-origin"] == PARTNER
        other = httpx.get(
            f"{server.url}/api/sources", headers={"Origin": "https://x.example"}, timeout=10
        )
        assert "access-control-allow-origin" not in other.headers


def test_tokens_and_tickets_never_reach_a_log_line(
    stack: dict[str, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another server in this process may have switched uvicorn's access log off globally.
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    settings = GatewaySettings(
        redis_url=stack["redis_url"],
        redis_prefix="sssec",
        gateway_port=0,
        gateway_token=TOKEN,
        gateway_access_log=True,
    )
    with ServerThread(settings) as server:
        ws_url = f"ws://{urlsplit(server.url).netloc}/ws/live"
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=server.url, timeout=10) as http:
            # Old clients that still put the token in the URL, REST and WebSocket alike.
            assert http.get("/api/sources", params={"token": TOKEN}).status_code == 401
            assert http.get(f"/?TOKEN={TOKEN}&x=1").status_code == 200
            with pytest.raises(Exception, match="403"):
                with connect(f"{ws_url}?task=detect&token={TOKEN}"):
                    pass
            ticket = http.post("/api/live/ticket", headers=bearer).json()["ticket"]
        with connect(f"{ws_url}?ticket={ticket}") as ws:
            ws.recv(timeout=10)
    text = "\n".join(logging.Formatter("%(name)s %(message)s").format(r) for r in caplog.records)
    assert TOKEN not in text and ticket not in text
    # The lines themselves were logged (redacted), by the access log and the handshakes.
    assert "GET /api/sources?token=[redacted]" in text
    assert "TOKEN=[redacted]&x=1" in text
    assert "/ws/live?task=detect&token=[redacted]" in text
    assert "/ws/live?ticket=[redacted]" in text
