"""Live fan-out: one Redis pub/sub subscriber per process, one bounded backlog per client.

The subscriber reads every ``<prefix>:live:*`` message once, checks that it is a result as the
sink publishes it (:mod:`.livemsg`: anything else is dropped and counted), frames it once, and
offers the frame to each client whose filter matches. Offers are flushed together once per turn
of the event loop: each client gets what accumulated in one write, so a burst costs one write
per client, not one per message and client; and the whole fan-out makes at most
``WRITES_PER_S`` writes a second (see :meth:`LiveHub.flush`).

A client whose socket does not take data keeps a backlog of at most
``gateway_client_queue`` frames; past that its oldest frames are dropped (counted). A client
whose socket has taken nothing for ``gateway_slow_client_s`` while frames wait is closed with
1013 ("try again later") and counted: it holds no memory and costs nothing from then on, and
never delays the others or the subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge

from streamsense.services.gateway import livemsg
from streamsense.services.gateway.wsconn import text_frame
from streamsense.services.serving.clients import TRANSIENT
from streamsense.services.serving.keys import RedisKeys

log = logging.getLogger(__name__)

CLIENTS = Gauge("streamsense_gateway_ws_clients", "Connected WebSocket clients")
RECEIVED = Counter("streamsense_gateway_live_received", "Results received from Redis pub/sub")
SENT = Counter("streamsense_gateway_ws_sent", "Messages sent to WebSocket clients")
DROPPED = Counter(
    "streamsense_gateway_ws_dropped", "Messages dropped for slow WebSocket clients (oldest first)"
)
EVICTED = Counter(
    "streamsense_gateway_ws_evicted", "WebSocket clients closed (1013) for taking nothing"
)
#: Close code for an evicted client: "try again later".
TOO_SLOW = 1013
#: Dispatch this many buffered pub/sub messages, then let the flush and the clients run.
BURST = 64
#: Socket writes a second for the whole fan-out, at most (one write holds all a client's
#: waiting results); see :meth:`LiveHub.flush`.
WRITES_PER_S = 20_000.0
SWEEP_S = 0.25


class Connection(Protocol):
    """What the hub needs of a client's socket (:class:`~.wsconn.LiveConnection`)."""

    on_writable: Any

    @property
    def open(self) -> bool: ...
    @property
    def can_write(self) -> bool: ...
    @property
    def room(self) -> int: ...
    @property
    def idle(self) -> bool: ...
    def probe(self) -> None: ...
    def write(self, frames: bytes) -> None: ...
    def close_now(self, code: int, reason: str) -> None: ...


@dataclass(eq=False)
class LiveClient:
    """A client's filter and backlog. An offer is one append to a bounded deque (the oldest
    falls out): a stalled client costs next to nothing per message until it is closed."""

    task: str | None
    source: str | None
    conn: Connection
    limit: int
    backlog: deque[bytes] = field(init=False)
    offered: int = 0
    written: int = 0
    counted_drops: int = 0
    stalled_since: float | None = None
    next_write: float = 0.0

    def __post_init__(self) -> None:
        self.backlog = deque(maxlen=self.limit)

    @property
    def dropped(self) -> int:
        return self.offered - self.written - len(self.backlog)

    def offer(self, frame: bytes) -> None:
        self.backlog.append(frame)
        self.offered += 1

    def flush(self, now: float, interval: float) -> bool:
        """Write the backlog if the socket takes it and the client's last write was at least
        ``interval`` ago. False when some of it waits for a later flush: for that interval,
        or for room in the client's window."""
        wrote = True
        if not self.backlog:
            self.stalled_since = None
        elif not self.ready():
            if self.stalled_since is None:
                self.stalled_since = now
            if self.conn.can_write:  # a frame larger than its room: does the client read?
                self.conn.probe()
        elif now < self.next_write:
            wrote = False
        else:
            # As much as the client's window has room for (one frame at least: a frame larger
            # than the room goes alone, once the client confirmed all before it, see ready());
            # the rest goes once the client confirms reading.
            room, size = self.conn.room, 0
            frames: list[bytes] = []
            while self.backlog and (not frames or size + len(self.backlog[0]) <= room):
                frames.append(self.backlog.popleft())
                size += len(frames[-1])
            self.conn.write(b"".join(frames))
            self.written += len(frames)
            SENT.inc(len(frames))
            self.stalled_since = None
            self.next_write = now + interval
        self.count_drops()
        return wrote and not self.backlog

    def ready(self) -> bool:
        """The socket takes the next frame now: it fits the client's window, or it is larger
        and the client has confirmed everything (``idle``). So a client that does not read
        holds at most its window, whatever size a result has (before, the first frame always
        went: one 16 MB result sat whole in the buffer of every client that read nothing)."""
        if not self.conn.can_write:
            return False
        return not self.backlog or len(self.backlog[0]) <= self.conn.room or self.conn.idle

    def count_drops(self) -> None:
        """Bring the drop metric up to date (once per flush, not once per message)."""
        if (new := self.dropped - self.counted_drops) > 0:
            DROPPED.inc(new)
            self.counted_drops += new


@dataclass(eq=False)
class LiveHub:
    redis: aioredis.Redis
    keys: RedisKeys
    queue_size: int = 256
    slow_client_s: float = 5.0
    writes_per_s: float = WRITES_PER_S
    clock: Callable[[], float] = time.monotonic
    clients: set[LiveClient] = field(default_factory=set)
    stalled: set[LiveClient] = field(default_factory=set)
    connected: bool = False
    received: int = 0
    dropped_gone: int = 0
    evicted: int = 0
    _dirty: set[LiveClient] = field(default_factory=set)
    _flush_handle: asyncio.Handle | None = None
    _timer: asyncio.TimerHandle | None = None
    _timer_at: float = 0.0
    _announced: bool | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def dropped(self) -> int:
        return self.dropped_gone + sum(c.dropped for c in self.clients)

    def register(self, task: str | None, source: str | None, conn: Connection) -> LiveClient:
        client = LiveClient(task, source, conn, self.queue_size)
        conn.on_writable = lambda: self._mark(client)
        self.clients.add(client)
        CLIENTS.set(len(self.clients))
        return client

    def unregister(self, client: LiveClient) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self._dirty.discard(client)
            self.stalled.discard(client)
            client.conn.on_writable = None
            client.count_drops()
            self.dropped_gone += client.dropped
            CLIENTS.set(len(self.clients))

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.connected

    # -- fan-out --------------------------------------------------------------------------------

    def dispatch(self, channel: str, data: bytes | str) -> None:
        parsed = self.keys.parse_channel(channel)
        if parsed is None:
            livemsg.dropped(channel, "bad_channel")
            return
        task, source = parsed
        self.received += 1
        RECEIVED.inc()
        text, reason = livemsg.check(task, source, data)
        if text is None:  # not a result as the sink publishes it: never sent to a browser
            livemsg.dropped(channel, reason)
            return
        frame: bytes | None = None
        # The hot loop (results x clients): the filter and the offer are written out here, a
        # method call each cost as much as the rest of the loop.
        for client in self.clients:
            if (client.task is None or client.task == task) and (
                client.source is None or client.source == source
            ):
                if frame is None:  # framed once, the same bytes for every client
                    frame = text_frame(
                        f'{{"type":"result","task":{orjson.dumps(task).decode()},'
                        f'"source":{orjson.dumps(source).decode()},'
                        f'"result":{text}}}'
                    )
                client.backlog.append(frame)  # a full deque drops its oldest by itself
                client.offered += 1
                if client.stalled_since is None:  # a stalled one waits for its socket
                    self._mark(client)

    def broadcast(self, message: dict[str, Any]) -> None:
        frame = text_frame(orjson.dumps(message).decode())
        for client in self.clients:
            client.offer(frame)
            if client.stalled_since is None:
                self._mark(client)

    def _mark(self, client: LiveClient) -> None:
        self._dirty.add(client)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write every marked client's backlog.

        Each client gets at most one write per ``active clients / writes_per_s`` seconds, so
        the whole fan-out makes at most ``writes_per_s`` writes a second however many clients
        there are: while clients that never read still take data into their socket buffers
        (a few hundred kB each), they cost one write per interval, not one per result. With
        few clients the interval is microseconds and every result goes out at once. A client
        whose socket takes nothing is set aside (``stalled``) until it drains or is closed."""
        self._flush_handle = None
        now = self.clock()
        interval = max(1, len(self.clients) - len(self.stalled)) / self.writes_per_s
        waiting_until: float | None = None
        dirty, self._dirty = self._dirty, set()
        for client in dirty:
            if client not in self.clients:
                continue
            if not client.conn.open:
                self.unregister(client)
                continue
            done = client.flush(now, interval)
            if client.stalled_since is not None:
                self.stalled.add(client)
                continue
            self.stalled.discard(client)
            if not done:
                self._dirty.add(client)
                waiting_until = min(waiting_until or client.next_write, client.next_write)
        if waiting_until is not None:
            self._flush_at(waiting_until, now)

    def check_stalled(self) -> None:
        """Close the clients whose socket has taken nothing for ``slow_client_s``."""
        now = self.clock()
        for client in list(self.stalled):
            if not client.conn.open:
                self.unregister(client)
            elif client.ready():
                self._mark(client)  # it drained; the flush takes it back
            elif client.stalled_since is not None:
                if now - client.stalled_since >= self.slow_client_s:
                    self.evict(client, now - client.stalled_since)

    def _flush_at(self, when: float, now: float) -> None:
        if self._timer is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = asyncio.get_running_loop().call_later(max(0.0, when - now), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._flush_handle is None:
            self.flush()

    def evict(self, client: LiveClient, stalled_s: float) -> None:
        log.debug("live: closing a client that took nothing for %.1f s", stalled_s)
        client.conn.close_now(TOO_SLOW, f"too slow: nothing read for {stalled_s:.0f} s")
        self.evicted += 1
        EVICTED.inc()
        self.unregister(client)

    async def sweep(self) -> None:
        """Stalled clients are looked at every ``SWEEP_S``, results or not."""
        while True:
            await asyncio.sleep(SWEEP_S)  # a period, not a wait for a condition
            self.check_stalled()

    # -- the subscriber -------------------------------------------------------------------------

    async def run(self) -> None:
        """Subscribe and dispatch until cancelled; reconnect with backoff when Redis is gone."""
        sweeper = asyncio.create_task(self.sweep(), name="live-sweep")
        try:
            await self._subscribe_forever()
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    async def _subscribe_forever(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self.keys.channel_pattern)
                self._set_connected(True)
                delay = 0.1
                log.info("live: subscribed to %s", self.keys.channel_pattern)
                n = 0
                while True:
                    msg: dict[str, Any] | None = await pubsub.get_message(timeout=None)
                    if msg is not None and msg.get("type") == "pmessage":
                        self.dispatch(_text(msg["channel"]), msg["data"])
                        n += 1
                        if n % BURST == 0:
                            # Buffered messages are returned without suspending: let the flush
                            # and the sockets run during a long burst.
                            await asyncio.sleep(0)
            except Exception as exc:  # the subscriber must outlive any Redis trouble
                if not isinstance(exc, TRANSIENT):
                    log.exception("live: unexpected pub/sub error; reconnecting")
                elif self.connected:
                    log.warning("live: redis pub/sub lost (%s); reconnecting", exc)
                self._set_connected(False)
                await asyncio.sleep(delay)  # backoff between reconnects, not a test wait
                delay = min(delay * 2, 5.0)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        self._ready.set()
        if self._announced is not None and self._announced != up:
            self.broadcast({"type": "status", "redis": up, "server_ms": time.time_ns() // 10**6})
        self._announced = up


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
