"""Parameters at their extremes and what a cache may keep, against the real gateway over a real
Redis: a ``since`` that only looks numeric is a 422, never a 500; a ``/ws/live`` filter the
contracts refuse is a 422 that says why, not a bare 403; an answer that holds data is never
stored by a browser or a proxy, and the dashboard's files are revalidated.

Before: ``?since=٣`` (an Arabic-Indic three), ``?since=1１`` (a full-width one) and
``?since=१-1`` passed the route's ``\\d`` (Unicode digits) and reached Redis, which refused the
stream id: ``500 internal error`` and a traceback per request. ``/ws/live?task=bogus`` and a
5,000-character ``?source=`` were refused with ``403`` and an empty body, like a wrong token.
No ``/api`` answer, ``/metrics``, ``/openapi.json`` or ``/healthz`` said ``Cache-Control``
(heuristically cacheable), and ``/static`` files could be served stale from a cache after an
upgrade.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
from collections.abc import Iterator

import httpx
import orjson
import pytest
import redis

from streamsense.schemas.registry import encode
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.keys import JSON_FIELD, RedisKeys
from tests.sink import factory

pytestmark = pytest.mark.integration

KEYS = RedisKeys("ssextreme")
SOURCE = "reviews"


@pytest.fixture(scope="module")
def gateway(stack: dict[str, str]) -> Iterator[ServerThread]:
    r = redis.Redis.from_url(stack["redis_url"])
    doc = encode(factory.sentiment(SOURCE, 1))
    r.xadd(KEYS.stream("sentiment", SOURCE), {JSON_FIELD: doc})
    r.hset(KEYS.latest("sentiment", SOURCE), mapping={JSON_FIELD: doc, "written_ms": "1"})
    r.sadd(KEYS.sources("sentiment"), SOURCE)
    settings = GatewaySettings(
        redis_url=stack["redis_url"], redis_prefix=KEYS.prefix, gateway_port=0
    )
    try:
        with ServerThread(settings) as server:
            yield server
    finally:
        r.close()


def test_since_takes_ascii_digits_only(gateway: ServerThread) -> None:
    url = f"{gateway.url}/api/results/sentiment/{SOURCE}"
    with httpx.Client(timeout=10) as http:
        for since in ("\u0663", "1\uff11", "\u0967-1", "1-\u0661", "\U0001d7ce"):
            reply = http.get(url, params={"since": since})
            assert reply.status_code == 422, (since, reply.status_code, reply.text)
            (error,) = reply.json()["detail"]
            assert error["loc"] == ["query", "since"], error
        # ASCII at the edges still pages: the smallest, an exclusive id, the largest allowed.
        for since in ("0", "0-0", "999999999999999", "999999999999999-9999999999999999999"):
            reply = http.get(url, params={"since": since})
            assert reply.status_code == 200, (since, reply.text)
        assert len(http.get(url, params={"since": "0"}).json()["items"]) == 1
        # limit: the bounds, and what is not an integer in range.
        for limit in ("0", "-1", "1001", "NaN", "inf", "1e3", "1.5", "", "99999999999999999999"):
            reply = http.get(url, params={"limit": limit})
            assert reply.status_code == 422, (limit, reply.status_code)
        assert http.get(url, params={"limit": "1000"}).status_code == 200


def _upgrade(server: ServerThread, query: str) -> tuple[int, dict[str, str], bytes]:
    """A handshake on a raw socket: the status, headers and body of a refusal."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"GET /ws/live{query} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        data = b""
        while not data.startswith(b"HTTP/1.1 101"):  # a refusal: read to its end
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split(" ", 2)[1]), headers, body


def test_a_live_filter_the_contracts_refuse_is_a_422_that_says_why(
    gateway: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    cases = {
        "?task=bogus": ["query", "task"],
        "?source=" + "a" * 5000: ["query", "source"],
        "?source=a%00b": ["query", "source"],
        "?source=%E2%80%AE": ["query", "source"],  # a bidi override
        "?source=": ["query", "source"],
    }
    for query, loc in cases.items():
        status, headers, body = _upgrade(gateway, query)
        assert status == 422, (query[:40], status, body[:200])
        assert headers["content-type"] == "application/json", headers
        assert headers["cache-control"] == "no-store", headers
        errors = orjson.loads(body)["detail"]
        assert [e["loc"] for e in errors] == [loc], errors
        assert all(e["msg"] for e in errors), errors
    # A refusal is an answer, not a server error (uvicorn logged one for every refusal).
    assert "422" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    # Well-formed filters (unknown parameters ignored) are subscribed as before.
    for query in ("?task=detect&source=..%2F..", "?unknown=1", "?source=%C3%A9t%C3%A9"):
        status, _, _ = _upgrade(gateway, query)
        assert status == 101, query


def test_answers_with_data_are_never_stored_and_files_are_revalidated(
    gateway: ServerThread,
) -> None:
    data = [
        "/api/sources",
        "/api/stats",
        "/api/cameras",
        "/api/models",
        f"/api/latest/sentiment/{SOURCE}",
        f"/api/results/sentiment/{SOURCE}",
        "/api/latest/sentiment/none-yet",  # 404
        "/api/results/sentiment/x?limit=0",  # 422
        "/api/nothing-here",  # 404 of no route
        "/healthz",
        "/metrics",
        "/openapi.json",
    ]
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        for path in data:
            for method in ("GET", "HEAD"):
                reply = http.request(method, path)
                assert reply.headers.get("cache-control") == "no-store", (method, path)
        reply = http.post("/api/live/ticket")
        assert reply.status_code == 200 and reply.headers.get("cache-control") == "no-store"
        reply = http.request("OPTIONS", "/api/sources")
        assert reply.status_code == 405 and reply.headers.get("cache-control") == "no-store"
        for path in ("/", "/docs", "/static/dashboard.js", "/static/style.css"):
            reply = http.get(path)
            assert reply.status_code == 200, path
            assert reply.headers.get("cache-control") == "no-cache", path
        for path in ("/static/dashboard.js", "/static/rle.js"):  # revalidated: a 304
            etag = http.get(path).headers["etag"]
            assert http.get(path, headers={"If-None-Match": etag}).status_code == 304, path
