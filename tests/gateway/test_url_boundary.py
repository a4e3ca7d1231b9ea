"""What a URL can do to the real gateway: malformed percent-encoding is a 400 naming the
parameter, on every route with a path parameter and for query strings, WebSocket handshakes
included; ``HEAD`` answers as ``GET`` without a body on every ``GET`` route.

Before: ``/api/latest/detect/%FF%FE`` and ``%C0%AF`` were looked up as the id "\\ufffd\\ufffd"
(404 "no detect result for '��'"), ``/api/results/detect/%ED%A0%80`` answered 200 for the id
"���", a lone ``%`` was taken as the id "%", and ``/ws/live?source=%FF`` subscribed to "\\ufffd";
``HEAD /healthz``, ``/metrics``, ``/`` and every ``/api`` route answered 405.
"""

from __future__ import annotations

import base64
import os
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from streamsense.services.gateway.security import CSP
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

#: Not UTF-8 (invalid bytes, an overlong '/', a surrogate) or not percent-encoding at all.
MALFORMED = ["%FF%FE", "%C0%AF", "%ED%A0%80", "%", "a%zz", "x%F", "%E2%82"]
#: Valid percent-encoded UTF-8 that only looks odd: still looked up as the id it names.
WELL_FORMED = {
    "50%25": "50%",
    "%EF%BF%BD": "\ufffd",
    "logs%2Fapp": "logs/app",
    "%C3%A9t%C3%A9": "été",
}


@pytest.fixture(scope="module")
def gateway(stack: dict[str, str]) -> Iterator[ServerThread]:
    settings = GatewaySettings(redis_url=stack["redis_url"], redis_prefix="ssurl", gateway_port=0)
    with ServerThread(settings) as server:
        yield server


def _raw(server: ServerThread, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request as bytes (no client library re-encodes the URL): status, headers, body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    pairs = (line.split(": ", 1) for line in lines[1:])
    headers = {name.lower(): value for name, value in pairs}
    return int(lines[0].split(" ", 2)[1]), headers, body


def _get(
    server: ServerThread, target: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    request = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    return _raw(server, request.encode("ascii"))


def _refused(server: ServerThread, target: str) -> list[Any]:
    status, headers, body = _get(server, target)
    assert status == 400, (target, status, body[:200])
    assert headers["content-type"] == "application/json"
    assert headers["content-security-policy"] == CSP
    (item,) = orjson.loads(body)["detail"]
    assert item["type"] == "percent_encoding" and "percent-encoded UTF-8" in item["msg"], item
    loc: list[Any] = item["loc"]
    return loc


def _path_routes(server: ServerThread) -> list[tuple[str, list[str]]]:
    """Every GET path of the API with path parameters, from the gateway's own OpenAPI."""
    doc = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    routes = [(p, re.findall(r"{(\w+)}", p)) for p, ops in doc["paths"].items() if "get" in ops]
    return [(p, params) for p, params in routes if params]


def test_malformed_path_parameters_are_refused_naming_the_parameter(
    gateway: ServerThread,
) -> None:
    routes = _path_routes(gateway)
    assert {p for p, _ in routes} >= {
        "/api/latest/{task}/{source}",
        "/api/results/{task}/{source}",
        "/api/thumbnail/{camera}",
    }
    valid = {"task": "detect"}
    for path, params in routes:
        for param in params:
            for bad in MALFORMED:
                target = path
                for other in params:
                    target = target.replace(
                        f"{{{other}}}", bad if other == param else valid.get(other, "cam-1")
                    )
                assert _refused(gateway, target) == ["path", param], target
    # the static files' mount takes a path parameter too; a malformed fixed part names none
    assert _refused(gateway, "/static/%FF.js") == ["path", "path"]
    assert _refused(gateway, "/api/sour%FFces") == ["path"]


def test_well_formed_ids_are_looked_up_as_what_they_encode(gateway: ServerThread) -> None:
    for encoded, source in WELL_FORMED.items():
        status, _, body = _get(gateway, f"/api/latest/detect/{encoded}")
        assert status == 404, (encoded, status, body)
        assert orjson.loads(body)["detail"] == f"no detect result for {source!r}"


def test_malformed_query_strings_are_refused_naming_the_parameter(gateway: ServerThread) -> None:
    assert _refused(gateway, "/api/results/detect/cam-1?since=%FF") == ["query", "since"]
    assert _refused(gateway, "/api/results/detect/cam-1?limit=1&since=1%") == ["query", "since"]
    assert _refused(gateway, "/healthz?%C0%AF=1") == ["query"]
    assert _get(gateway, "/api/results/detect/cam-1?since=1&x=%E2%82%AC")[0] == 200


def test_a_live_handshake_with_a_malformed_filter_is_refused(gateway: ServerThread) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /ws/live?task=detect&source=%FF%FE HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {key}\r\n\r\n"
    )
    status, headers, body = _raw(gateway, request.encode())
    assert status == 400, body
    assert headers["content-security-policy"] == CSP
    assert orjson.loads(body)["detail"][0]["loc"] == ["query", "source"]


def test_head_answers_as_get_without_a_body(gateway: ServerThread) -> None:
    for target in (
        "/healthz",
        "/metrics",
        "/",
        "/static/style.css",
        "/docs",
        "/openapi.json",
        "/api/sources",
        "/api/stats",
        "/api/latest/detect/nothing-here",
        "/api/results/detect/nothing-here",
    ):
        get_status, get_headers, get_body = _get(gateway, target)
        status, headers, body = _get(gateway, target, "HEAD")
        assert status == get_status and status != 405, (target, status, get_status)
        assert body == b"", target
        assert headers["content-type"] == get_headers["content-type"], target
        assert headers["content-security-policy"] == get_headers["content-security-policy"]
        if target in ("/", "/static/style.css", "/api/latest/detect/nothing-here"):
            assert int(headers["content-length"]) == len(get_body) > 0, target
    # a method a route does not take is still 405, and it lists HEAD with GET
    status, headers, _ = _get(gateway, "/healthz", "POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, headers, _ = _get(gateway, "/api/live/ticket", "HEAD")
    assert status == 405 and headers["allow"] == "POST"
