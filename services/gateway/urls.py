"""URLs are decoded strictly: a path or query string that is not percent-encoded UTF-8 is a 400
that names the parameter, never an id made of U+FFFD.

uvicorn decodes a path with ``urllib.parse.unquote`` (invalid UTF-8 becomes U+FFFD, a ``%`` that
starts no escape stays as it is) and Starlette the query string the same way, so
``/api/latest/detect/%FF%FE`` and ``/api/latest/detect/%C0%AF`` were both looked up as the id
``"\\ufffd\\ufffd"``, and ``?source=%FF`` subscribed to that id. Here the raw bytes of the request
(``raw_path``, ``query_string``) are decoded again before any route runs; when they are
malformed, the request is refused the way FastAPI refuses an invalid parameter (``detail`` a
list of ``{type, loc, msg}``), with 400: ``loc`` is ``["path", <parameter>]`` (found by matching
the routes, so it holds for every route with a path parameter), ``["query", <name>]``, or
``["path"]`` / ``["query"]`` when no parameter holds the bad part. WebSocket handshakes get the
same answer as an HTTP denial.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.routing import Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

_ESCAPE = re.compile(rb"%(?:([0-9A-Fa-f]{2})|)")
#: Never part of valid UTF-8: a bad ``%`` is decoded to this byte, so it is marked like the rest.
_BAD_BYTE = b"\xff"
#: What ``surrogateescape`` makes of bytes that are not UTF-8; no valid decoding yields one.
_MARKED = re.compile("[\udc80-\udcff]")
MESSAGE = (
    "is not valid percent-encoded UTF-8: send the UTF-8 bytes of the value, each byte that is "
    "not a plain ASCII character as %XX (RFC 3986), and a literal '%' as %25"
)


class UrlErrorItem(BaseModel):
    type: str
    loc: list[str]
    msg: str


class UrlError(BaseModel):
    """The answer to a malformed URL (the shape of FastAPI's validation errors)."""

    detail: list[UrlErrorItem]


def _escape(m: re.Match[bytes]) -> bytes:
    return bytes.fromhex(m.group(1).decode()) if m.group(1) else _BAD_BYTE


def marked(raw: bytes) -> str:
    """``raw`` percent-decoded as UTF-8, with every malformed part marked (see :func:`is_bad`)."""
    return _ESCAPE.sub(_escape, raw).decode("utf-8", "surrogateescape")


def is_bad(text: str) -> bool:
    return _MARKED.search(text) is not None


def _error(loc: list[str]) -> JSONResponse:
    where = f"{loc[0]} parameter {loc[1]!r}" if len(loc) > 1 else f"the URL {loc[0]}"
    body = {"detail": [{"type": "percent_encoding", "loc": loc, "msg": f"{where} {MESSAGE}"}]}
    return JSONResponse(body, status_code=400, headers={"Cache-Control": "no-store"})


def _templates(routes: Iterable[Any]) -> Iterator[re.Pattern[str]]:
    """The path regexes of ``routes`` in routing order, those of included routers and mounts
    included (FastAPI wraps an included router: its routes are its ``original_router``'s)."""
    for route in routes:
        inner = getattr(route, "routes", None) or getattr(
            getattr(route, "original_router", None), "routes", None
        )
        if inner and not isinstance(route, Mount):
            yield from _templates(inner)
        elif isinstance(getattr(route, "path_regex", None), re.Pattern):
            yield route.path_regex


class StrictUrls:
    """Refuses requests whose path or query string is not percent-encoded UTF-8 (pure ASGI).
    ``router`` is the app's: its routes name the path parameter that holds the bad part."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            loc = self.bad_part(scope)
            if loc is not None:
                await self.refuse(scope, receive, send, loc)
                return
        await self.app(scope, receive, send)

    def bad_part(self, scope: Scope) -> list[str] | None:
        """Where the URL is malformed (a FastAPI ``loc``), None when it is not."""
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        path = marked(raw_path.partition(b"?")[0]) if b"%" in raw_path else None
        if path is not None and is_bad(path):
            return ["path", *self.path_parameter(path)]
        query: bytes = scope.get("query_string", b"")
        if b"%" in query:
            for pair in query.split(b"&"):
                name, _, value = pair.partition(b"=")
                name_text = marked(name.replace(b"+", b" "))
                if is_bad(name_text):
                    return ["query"]
                if is_bad(marked(value.replace(b"+", b" "))):
                    return ["query", name_text]
        return None

    def path_parameter(self, path: str) -> list[str]:
        """The path parameter of the first route whose template the marked ``path`` fits that
        holds a marked part; none when no route fits or the bad part is in its fixed text."""
        for regex in _templates(self.router.routes):
            m = regex.match(path)
            if m is not None:
                return [name for name, value in m.groupdict().items() if is_bad(value)][:1]
        return []

    async def refuse(self, scope: Scope, receive: Receive, send: Send, loc: list[str]) -> None:
        answer = _error(loc)
        if scope["type"] == "http":
            await answer(scope, receive, send)
            return
        ws = WebSocket(scope, receive, send)
        if "websocket.http.response" in scope.get("extensions", {}):
            await ws.send_denial_response(answer)
        else:  # a server without denial responses: the close code says it was refused
            await ws.close(code=1008, reason="malformed URL")
