"""A result larger than a client's window (the real gateway, real Redis pub/sub, raw sockets
that never read beside a real client that does): it reaches the reader, and the clients that
read nothing never hold it in their buffers: they hold at most their window and are closed
(1013) as too slow.

Before: the fan-out always wrote a client's first waiting frame whole, however small its
window: one 4 MB result sat in the socket buffer of every client that read nothing (20 such
clients and one 16 MB message took the gateway from 76 MB to 444 MB; with the 1,000 clients
allowed, a handful of such messages is gigabytes).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from websockets.sync.client import connect

from streamsense.schemas.registry import encode
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.keys import RedisKeys
from tests.conftest import wait_for
from tests.gateway import rawws
from tests.sink import factory

pytestmark = pytest.mark.integration

KEYS = RedisKeys("sslivelarge")
IDLE = 12
SIZE = 4 * 1024 * 1024
SEND_BUFFER = 65536


@pytest.fixture(scope="module")
def gateway(stack: dict[str, str]) -> Iterator[ServerThread]:
    settings = GatewaySettings(
        redis_url=stack["redis_url"],
        redis_prefix=KEYS.prefix,
        gateway_port=0,
        gateway_slow_client_s=1.0,
        gateway_ws_send_buffer=SEND_BUFFER,
    )
    with ServerThread(settings) as server:
        yield server


def _idle_client(server: ServerThread) -> socket.socket:
    return rawws.handshake("127.0.0.1", server.port, rcvbuf=4096)


def _buffered(server: ServerThread) -> list[int]:
    """Bytes waiting in the gateway's write buffer of each live client."""
    hub: Any = server.server.config.app.state.hub
    return [c.conn.transport.get_write_buffer_size() for c in list(hub.clients)]


def test_a_large_result_reaches_readers_and_never_fills_idle_clients(
    gateway: ServerThread, stack: dict[str, str]
) -> None:
    good = encode(factory.sentiment("big", 1))
    doc = orjson.loads(good)
    doc["text"] += "x" * SIZE
    large = orjson.dumps(doc)
    r = redis.Redis.from_url(stack["redis_url"])
    idle = [_idle_client(gateway) for _ in range(IDLE)]
    try:
        with connect(
            f"ws://127.0.0.1:{gateway.port}/ws/live", max_size=None, open_timeout=10
        ) as reader:
            reader.recv(timeout=10)  # hello
            wait_for(lambda: len(_buffered(gateway)) == IDLE + 1, 10, "every client subscribed")
            peak = 0
            assert r.publish(KEYS.channel("sentiment", "big"), large) == 1
            got = orjson.loads(reader.recv(timeout=30))
            assert got["type"] == "result" and len(got["result"]["text"]) == len(doc["text"])

            def all_idle_closed() -> bool:
                nonlocal peak
                sizes = _buffered(gateway)
                peak = max([peak, *sizes])
                return len(sizes) == 1

            wait_for(all_idle_closed, 30, "the clients that read nothing closed (1013)")
            # Each idle client held at most its window (plus a close frame), never the result.
            assert peak <= SEND_BUFFER, peak
            # The reader goes on.
            r.publish(KEYS.channel("sentiment", "big"), good)
            assert orjson.loads(reader.recv(timeout=10))["type"] == "result"
    finally:
        for sock in idle:
            sock.close()
        r.close()
