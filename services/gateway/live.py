"""Live fan-out: one Redis pub/sub subscriber per process, one bounded queue per client.

The subscriber reads every ``<prefix>:live:*`` message once and offers it to the queue of each
client whose filter matches. A full queue drops its oldest message (counted), so a slow client
only ever loses its own backlog and never delays the others or the subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from prometheus_client import Counter, Gauge

from streamsense.schemas.catalog import Task
from streamsense.services.gateway.auth import websocket_allowed
from streamsense.services.serving.clients import TRANSIENT
from streamsense.services.serving.keys import RedisKeys

log = logging.getLogger(__name__)

CLIENTS = Gauge("streamsense_gateway_ws_clients", "Connected WebSocket clients")
RECEIVED = Counter("streamsense_gateway_live_received", "Results received from Redis pub/sub")
SENT = Counter("streamsense_gateway_ws_sent", "Messages sent to WebSocket clients")
DROPPED = Counter(
    "streamsense_gateway_ws_dropped", "Messages dropped for slow WebSocket clients (oldest first)"
)


@dataclass(eq=False)
class LiveClient:
    task: str | None
    source: str | None
    queue: asyncio.Queue[str]
    dropped: int = 0

    def wants(self, task: str, source: str) -> bool:
        return (self.task is None or self.task == task) and (
            self.source is None or self.source == source
        )

    def offer(self, message: str) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
            DROPPED.inc()
        self.queue.put_nowait(message)


@dataclass(eq=False)
class LiveHub:
    redis: aioredis.Redis
    keys: RedisKeys
    queue_size: int = 256
    clients: set[LiveClient] = field(default_factory=set)
    connected: bool = False
    received: int = 0
    dropped_gone: int = 0
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def dropped(self) -> int:
        return self.dropped_gone + sum(c.dropped for c in self.clients)

    def register(self, task: str | None, source: str | None) -> LiveClient:
        client = LiveClient(task, source, asyncio.Queue(self.queue_size))
        self.clients.add(client)
        CLIENTS.set(len(self.clients))
        return client

    def unregister(self, client: LiveClient) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self.dropped_gone += client.dropped
            CLIENTS.set(len(self.clients))

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.connected

    def dispatch(self, channel: str, data: bytes | str) -> None:
        parsed = self.keys.parse_channel(channel)
        if parsed is None:
            return
        task, source = parsed
        self.received += 1
        RECEIVED.inc()
        message: str | None = None
        for client in self.clients:
            if client.wants(task, source):
                if message is None:  # built once, shared by every client
                    message = (
                        f'{{"type":"result","task":{orjson.dumps(task).decode()},'
                        f'"source":{orjson.dumps(source).decode()},'
                        f'"result":{_text(data)}}}'
                    )
                client.offer(message)

    async def run(self) -> None:
        """Subscribe and dispatch until cancelled; reconnect with backoff when Redis is gone."""
        delay = 0.1
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self.keys.channel_pattern)
                self.connected = True
                self._ready.set()
                delay = 0.1
                log.info("live: subscribed to %s", self.keys.channel_pattern)
                while True:
                    msg: dict[str, Any] | None = await pubsub.get_message(timeout=None)
                    if msg is not None and msg.get("type") == "pmessage":
                        self.dispatch(_text(msg["channel"]), msg["data"])
                        # Buffered pub/sub messages are returned without suspending; yield so
                        # the clients' send loops drain their queues during a burst instead of
                        # overflowing them before they ever run.
                        await asyncio.sleep(0)
            except Exception as exc:  # the subscriber must outlive any Redis trouble
                if not isinstance(exc, TRANSIENT):
                    log.exception("live: unexpected pub/sub error; reconnecting")
                elif self.connected:
                    log.warning("live: redis pub/sub lost (%s); reconnecting", exc)
                self.connected = False
                self._ready.set()
                await asyncio.sleep(delay)  # backoff between reconnects, not a test wait
                delay = min(delay * 2, 5.0)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


router = APIRouter()


@router.websocket("/ws/live")
async def live(ws: WebSocket, task: Task | None = None, source: str | None = None) -> None:
    """Results as they arrive, as ``{"type": "result", "task", "source", "result"}`` texts;
    the first message is ``{"type": "hello"}`` once the client is subscribed."""
    if not websocket_allowed(ws):
        await ws.close(code=1008, reason="missing or wrong token")
        return
    hub: LiveHub = ws.app.state.hub
    await ws.accept()
    client = hub.register(task, source)
    try:
        hello = {"type": "hello", "task": task, "source": source, "queue": hub.queue_size}
        await ws.send_text(orjson.dumps(hello).decode())
        sender = asyncio.create_task(_send_loop(ws, client))
        receiver = asyncio.create_task(_until_disconnect(ws))
        done, pending = await asyncio.wait({sender, receiver}, return_when="FIRST_COMPLETED")
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for t in done:
            if (exc := t.exception()) is not None and not _is_disconnect(exc):
                log.warning("live client ended: %r", exc)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(client)


async def _send_loop(ws: WebSocket, client: LiveClient) -> None:
    while True:
        message = await client.queue.get()
        await ws.send_text(message)
        SENT.inc()


async def _until_disconnect(ws: WebSocket) -> None:
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return


def _is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, WebSocketDisconnect | ConnectionError) or "close" in str(exc).lower()
