"""The HTTP/1.1 connection under uvicorn, with the bounds uvicorn's httptools protocol lacks.

uvicorn's ``HttpToolsProtocol`` keeps every byte of a request head: a client sending 200 MB of
headers made the gateway hold 200 MB, a 64 MB URL stalled the event loop for seconds (the URL
is joined chunk by chunk), and a connection that sends nothing, or one header line every few
seconds, was held for ever (its keep-alive timer starts only after a first response). Here:

- the request line and headers together are at most ``max_head`` bytes and ``MAX_HEADERS``
  lines; past either the client gets ``414 URI Too Long`` (the URL) or ``431 Request Header
  Fields Too Large`` (the headers) and the connection is closed, before more is buffered;
- a request head must be complete ``head_timeout_s`` after the connection opened or the
  previous response went out; otherwise ``408 Request Timeout`` (when part of a head came)
  or a plain close (nothing came).

WebSocket handshakes are HTTP requests first, so they are bounded the same way.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import TimerHandle
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from streamsense.services.gateway.security import CSP, HEADERS

log = logging.getLogger(__name__)

#: Header lines per request at most (browsers send about 15; websockets allows 128 too).
MAX_HEADERS = 128
#: Refusals made here never reach the app's middleware: they carry its headers themselves.
_SECURITY_HEADERS = [("Content-Security-Policy", CSP), *HEADERS.items()]
_REASONS = {408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


class _HeadRefused(Exception):
    """Raised in a parser callback to stop parsing; httptools wraps it in its own error."""


class BoundedHttp(HttpToolsProtocol):
    """One HTTP connection; ``max_head`` and ``head_timeout_s`` are set per server by
    :func:`protocol`."""

    max_head: int = 32768
    head_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_lines = 0
        self._head_started = False  # some byte of the awaited request head has come
        self._head_open = True  # the next bytes are (still) a request head
        self._head_raw = 0  # bytes of chunks that were wholly part of the open head
        self._heads_done = 0  # request heads completed on this connection
        self._head_timer: TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None

    # -- the head deadline ---------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_started = False
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered: not a head that is late
        if self._head_started:
            self._refuse_now(408, f"request head not complete within {self.head_timeout_s:g} s")
        else:
            self.transport.close()  # an idle connection: nothing to answer

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._head_started = True
        was_open, done_before = self._head_open, self._heads_done
        super().data_received(data)
        # httptools hands a header over only once it is complete: one endless header line
        # would be buffered inside it unseen by ``on_header``. A chunk that began and ended
        # inside one head counts whole (a head that began mid-chunk counts from the next).
        inside = was_open and self._head_open and self._heads_done == done_before
        if inside and not self.transport.is_closing():
            self._head_raw += len(data)
            if self._head_raw > self.max_head:
                self._refuse_now(431, f"request line and headers larger than {self.max_head} bytes")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's head has the same deadline, unless one is queued (pipelined,
        # its head already complete) or the connection is going.
        if not self.transport.is_closing() and not self.pipeline:
            self._arm_head_timer()

    # -- the head budget -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_lines = 0

    def _spend(self, n: int, status: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.max_head:
            what = "URL" if status == 414 else "request line and headers"
            self._refusal = (status, f"{what} larger than {self.max_head} bytes")
            raise _HeadRefused(self._refusal[1])

    def on_url(self, url: bytes) -> None:
        self._spend(len(url), 414)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # httptools may call back with a header in pieces; each piece counts as a line so a
        # client cannot make the count meaningless, and MAX_HEADERS leaves room for that.
        self._head_lines += 1
        if self._head_lines > MAX_HEADERS:
            self._refusal = (431, f"more than {MAX_HEADERS} header lines")
            raise _HeadRefused(self._refusal[1])
        self._spend(len(name) + len(value) + 4, 431)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._head_open, self._head_raw = False, 0
        self._heads_done += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_open = True  # what comes next is the head of the next request
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to any parser error, ours included: ours get their own status."""
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, reason = self._refusal
        self._refusal = None
        self._refuse_now(status, reason)

    def _refuse_now(self, status: int, reason: str) -> None:
        client = "%s:%d" % self.client if self.client else "a client"  # noqa: UP031
        log.info("refused %s's request: %d, %s", client, status, reason)
        body = orjson.dumps({"detail": reason})
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\n" % len(body))
        head.append(b"connection: close\r\n")
        head += [f"{n.lower()}: {v}\r\n".encode() for n, v in _SECURITY_HEADERS]
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self.transport.close()


def protocol(max_head: int, head_timeout_s: float) -> type[BoundedHttp]:
    """The connection class for uvicorn's ``http=`` with this server's bounds."""
    attrs = {"max_head": max_head, "head_timeout_s": head_timeout_s}
    return type("BoundedHttp", (BoundedHttp,), attrs)
