"""The WebSocket connection under uvicorn, with what the live fan-out needs from it.

uvicorn's sans-I/O protocol, plus:

- a window on what the client has not confirmed reading: the gateway pings once half of
  ``gateway_ws_send_buffer`` (64 KiB) is unconfirmed and sends no more than the whole of it
  until the pong comes back. Every WebSocket client answers pings by itself (RFC 6455;
  browsers and client libraries do it below the application), and a pong means everything
  before the ping was read. A new client starts with ``FIRST_WINDOW`` (8 KiB) until its first
  pong, so a client that never reads takes 8 KiB and is then treated as stalled. Without the
  window, its kernel's receive buffer and ours (Linux grows a send buffer to 4 MB) took
  ~14,000 results, each one a send costing the fan-out CPU, before anything noticed;
- a kernel send buffer and transport high-water mark of the same size;
- frames written straight to the transport (``LiveConnection.write``): a result is framed once
  and the same bytes go to every client, several queued frames in one write, instead of one
  ASGI send per message and client (a server frame is unmasked, so it is the same for all);
- a budget on what the client sends: a live client has nothing to say but the pongs that
  answer the gateway's pings (not counted), so past ``CLIENT_FRAME_BURST`` other frames (pings,
  messages, unsolicited pongs) at once or ``CLIENT_FRAMES_PER_S`` a second after that, it is
  closed with 1008 and what it sends next is not even parsed. Each of those frames cost the
  one event loop a parse and an ASGI message or a pong of its own write: one client sending
  tiny pings as fast as it could held every other client and ``/healthz`` for seconds;
- a close that cannot hang: ``transport.close()`` waits for the buffer to drain, which never
  happens when the peer stopped reading, so after the close frame the socket is reset once
  ``CLOSE_GRACE_S`` has passed (a slow client that still reads gets the close code in time).

The app reaches a connection through ``scope["extensions"][EXTENSION]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

log = logging.getLogger(__name__)

EXTENSION = "streamsense.live"
#: How long a closed client may take to read what is still buffered before its socket is cut.
CLOSE_GRACE_S = 2.0
#: Our pings' payloads start with this (uvicorn's keepalive pings are 4 random bytes).
PING_TAG = b"ss-window:"
#: The window of a client that has not answered a ping yet.
FIRST_WINDOW = 8192
#: Frames a client may send at once, and per second after that (see the module docstring).
CLIENT_FRAME_BURST = 100
CLIENT_FRAMES_PER_S = 10.0
#: Close code for a client past its budget: "policy violation".
FLOODING = 1008
FLOODED = Counter(
    "streamsense_gateway_ws_flooding",
    "WebSocket clients closed (1008) for sending more frames than a live client needs",
)


def text_frame(payload: str) -> bytes:
    """The wire form of one unmasked text message, shared by every client."""
    return Frame(Opcode.TEXT, payload.encode()).serialize(mask=False)


class LiveConnection(WebSocketsSansIOProtocol):
    """One WebSocket connection; ``send_buffer`` is set per server by :func:`protocol`."""

    send_buffer: int = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_writable: Callable[[], None] | None = None
        self.sent = 0  # bytes of frames written by the fan-out
        self.confirmed = 0  # of which the client confirmed reading (a pong came back)
        self._ping: bytes | None = None  # the payload of our ping in flight
        self._ping_at = 0  # what ``sent`` was when it went out
        self._pings = 0
        # Until the first pong, a client has shown nothing: it starts with a small window, so
        # hundreds of clients that never read cost 8 KiB each, not the full window.
        self.window = min(FIRST_WINDOW, self.send_buffer)
        self._budget = float(CLIENT_FRAME_BURST)  # frames the client may still send now
        self._budget_at: float | None = None
        self.flooded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not a TCP socket (tests over pipes)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        self.transport.set_write_buffer_limits(high=self.send_buffer)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the handshake went on to the app
            scope["extensions"][EXTENSION] = self

    # -- what the fan-out uses ----------------------------------------------------------------

    @property
    def open(self) -> bool:
        return not (self.close_sent or self.disconnected or self.transport.is_closing())

    @property
    def can_write(self) -> bool:
        """The client is within its window and the transport takes more without buffering
        past the high-water mark."""
        return self.open and self.writable.is_set() and self.sent - self.confirmed < self.window

    @property
    def room(self) -> int:
        """Bytes the client's window has left."""
        return self.window - (self.sent - self.confirmed)

    def write(self, frames: bytes) -> None:
        """Whole frames, in order, after the handshake (callers check ``open`` first); a ping
        goes with them once half the window is unconfirmed."""
        self.sent += len(frames)
        self.transport.write(frames + self._ping_if_due())

    @property
    def idle(self) -> bool:
        """The client confirmed reading all the fan-out wrote, and has its full window: a frame
        larger than its room may go now, alone. A client that never answered a ping is never
        idle, so a result larger than its window never lands in its buffer."""
        return self.sent == self.confirmed and self.window == self.send_buffer

    def probe(self) -> None:
        """Ping now, unless a ping is out: its pong confirms what was sent (see ``idle``)."""
        if self._ping is None and self.open:
            self.transport.write(self._ping_now())

    def _ping_if_due(self) -> bytes:
        """A ping frame once half the window is unconfirmed and none is out, else nothing."""
        if self._ping is not None or self.sent - self.confirmed < self.window // 2:
            return b""
        return self._ping_now()

    def _ping_now(self) -> bytes:
        self._pings += 1
        self._ping = PING_TAG + self._pings.to_bytes(8, "big")
        self._ping_at = self.sent
        self.conn.send_ping(self._ping)
        return b"".join(self.conn.data_to_send())

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame and make sure the socket goes, read or not."""
        if not self.open:
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.read_paused:  # so the peer's close reply can still arrive
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(CLOSE_GRACE_S, self.cut)

    def cut(self) -> None:
        """Drop the connection now, unsent data and all: a reset, not a FIN queued behind
        data the peer will never read (the kernel would keep the socket and its buffer)."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            # OSError: gone meanwhile; ValueError: uvloop's socket of a closed transport
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    # -- what the client sends -----------------------------------------------------------------

    def _spend(self) -> bool:
        """Take one frame from the client's budget; past it, the client is closed (False)."""
        if self.flooded:
            return False
        now = self.loop.time()
        if self._budget_at is not None:
            refill = (now - self._budget_at) * CLIENT_FRAMES_PER_S
            self._budget = min(float(CLIENT_FRAME_BURST), self._budget + refill)
        self._budget_at = now
        if self._budget >= 1.0:
            self._budget -= 1.0
            return True
        self.flooded = True
        FLOODED.inc()
        log.info(
            "live: closing a client that sent more than %d frames at once or %.0f a second "
            "(live clients send nothing but pongs)",
            CLIENT_FRAME_BURST,
            CLIENT_FRAMES_PER_S,
        )
        self.close_now(
            FLOODING, f"too many frames: a live client sends at most {CLIENT_FRAMES_PER_S:.0f}/s"
        )
        # Nothing more is read: the socket is cut after the grace. (uvicorn resumes reading
        # only what it paused itself, so it does not resume this.)
        if not self.transport.is_closing():
            self.transport.pause_reading()
        self.read_paused = False
        return False

    def data_received(self, data: bytes) -> None:
        if self.flooded:
            return  # closed for flooding: what it sends now is not even parsed
        super().data_received(data)

    def handle_text(self, event: Any) -> None:
        if self._spend():
            super().handle_text(event)

    def handle_bytes(self, event: Any) -> None:
        if self._spend():
            super().handle_bytes(event)

    def handle_cont(self, event: Any) -> None:
        if self._spend():
            super().handle_cont(event)

    # -- uvicorn's hooks ------------------------------------------------------------------------

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.on_writable is not None:
            self.on_writable()

    def handle_pong(self, event: Any) -> None:
        if self.flooded:
            return
        if self._ping is not None and bytes(event.data) == self._ping:
            self.confirmed, self._ping = self._ping_at, None
            self.window = self.send_buffer
            # What was sent after that ping needs a ping of its own, or a full window would
            # wait for a pong that nobody asked for.
            if ping := self._ping_if_due():
                self.transport.write(ping)
            if self.on_writable is not None:  # the window moved: what waits can go
                self.on_writable()
            return
        keepalive = self.pending_ping_payload
        if (keepalive is None or bytes(event.data) != keepalive) and not self._spend():
            return  # a pong nobody asked for counts like any other frame
        super().handle_pong(event)  # uvicorn's keepalive

    def handle_ping(self) -> None:
        if not self._spend():
            self.conn.data_to_send()  # the pong websockets queued is not sent
            return
        # A client may ping without reading the pongs: past a few buffers' worth it is cut
        # rather than buffered without end.
        if self.transport.get_write_buffer_size() > 4 * self.send_buffer:
            self.cut()
            return
        super().handle_ping()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            # A denial response is a handshake completed: uvicorn logged "ASGI callable returned
            # without completing handshake" at ERROR for each refusal (client limit, bad URL).
            self.handshake_complete = True

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()  # close frame, then transport.close(), which may hang
        self.loop.call_later(CLOSE_GRACE_S, self.cut)


def protocol(send_buffer: int) -> type[LiveConnection]:
    """The connection class for uvicorn's ``ws=`` with this server's send buffer."""
    return type("LiveConnection", (LiveConnection,), {"send_buffer": send_buffer})
