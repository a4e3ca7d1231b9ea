"""WebSocket fan-out through the real path (Kafka -> sink -> Redis pub/sub -> gateway -> WS),
filters, and the slow-client policy (bounded queue, oldest dropped, others unaffected)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from streamsense.services.gateway.live import LiveHub
from streamsense.services.serving.keys import RedisKeys
from tests.conftest import wait_for
from tests.gateway.conftest import Pipeline
from tests.sink import factory

pytestmark = pytest.mark.integration

#: Per-client queue of this module's gateway: small enough that a stalled client overflows
#: within the burst below, large enough that a reading client keeps up on a loaded machine.
CLIENT_QUEUE = 64
#: The stalled client answers no ping while its socket is full; with the default 20 s keepalive
#: a slow run of the burst below on a loaded machine would close it before the assertions.
WS_PING_S = 600.0


@contextmanager
def _ws(p: Pipeline, query: str = "", rcvbuf: int | None = None) -> Iterator[ClientConnection]:
    """A subscribed client (hello received); no compression, so sizes on the wire are real,
    and no client-side keepalive (a stalled client's pongs wait behind its full buffer)."""
    parts = urlsplit(p.url)
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((parts.hostname, parts.port))
    url = f"ws://{parts.netloc}/ws/live{query}"
    with connect(
        url, sock=sock, max_queue=1, max_size=None, compression=None, ping_interval=None
    ) as ws:
        hello = orjson.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello"
        yield ws


def _collect(ws: ClientConnection, n: int, timeout: float = 30) -> list[dict[str, Any]]:
    return _collect_into(ws, [], n, timeout)


def _collect_into(
    ws: ClientConnection, out: list[dict[str, Any]], n: int, timeout: float
) -> list[dict[str, Any]]:
    """Append up to ``n`` messages to ``out`` (readable from another thread meanwhile)."""
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        try:
            out.append(orjson.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic()))))
        except TimeoutError:
            break
    return out


def test_results_arrive_live_and_filters_apply(pipeline: Pipeline) -> None:
    with (
        _ws(pipeline) as everything,
        _ws(pipeline, "?task=sentiment&source=chat") as chat,
        _ws(pipeline, "?task=detect") as detect,
    ):
        records = [factory.result_record(factory.sentiment("chat", 100 + i)) for i in range(5)]
        records.append(factory.result_record(factory.sentiment("reviews", 200)))
        records.append(factory.result_record(factory.detection("cam-1", 300, [(0, 0, 1, 1)])))
        pipeline.produce(records)

        got_chat = _collect(chat, 5)
        assert [m["result"]["source"]["seq"] for m in got_chat] == [100, 101, 102, 103, 104]
        assert {(m["type"], m["task"], m["source"]) for m in got_chat} == {
            ("result", "sentiment", "chat")
        }
        got_all = _collect(everything, 7)
        assert sorted((m["task"], m["result"]["source"]["seq"]) for m in got_all) == sorted(
            [("sentiment", 100 + i) for i in range(5)] + [("sentiment", 200), ("detect", 300)]
        )
        got_detect = _collect(detect, 1)
        assert [m["result"]["source_id"] for m in got_detect] == ["cam-1"]
        assert _collect(detect, 1, timeout=0.3) == [], "only detections for this filter"


@pytest.mark.slow
def test_a_stalled_client_loses_only_its_own_backlog(pipeline: Pipeline) -> None:
    n, chunk = 300, 25
    with (
        _ws(pipeline, "?task=sentiment&source=big", rcvbuf=4096) as stalled,
        _ws(pipeline, "?task=sentiment&source=big") as fast,
    ):
        text = "x" * 60_000  # ~60 KB on the wire: socket buffers fill after a few dozen
        got: list[dict[str, Any]] = []
        # The fast client reads while results are produced, in chunks smaller than its queue
        # (the sink publishes a batch at once), each chunk once it has read the one before.
        with ThreadPoolExecutor(1) as pool:
            reading = pool.submit(_collect_into, fast, got, n, 120)
            for start in range(0, n, chunk):
                pipeline.produce(
                    [
                        factory.result_record(factory.sentiment("big", i, text=text))
                        for i in range(start, start + chunk)
                    ]
                )
                wait_for(lambda end=start + chunk: len(got) >= end, 60, "the fast client")
            reading.result()
        stats = httpx.get(f"{pipeline.url}/api/stats", timeout=10).json()
        assert stats["live_dropped"] > 0
        assert stats["live_clients"] >= 2
        # What the stalled client reads now is its bounded backlog: the newest messages.
        late = _collect(stalled, n, timeout=5)
        seqs = [m["result"]["source"]["seq"] for m in late]
        assert seqs[-1] == n - 1 and len(seqs) < n // 2
        # The reading client is not held back by the stalled one: everything, in order.
        assert [m["result"]["source"]["seq"] for m in got] == list(range(n))


def test_hub_drops_oldest_per_client_and_counts() -> None:
    async def scenario() -> None:
        hub = LiveHub(redis=None, keys=RedisKeys("p"), queue_size=3)  # type: ignore[arg-type]
        slow = hub.register("sentiment", None)
        other = hub.register(None, "s1")
        for i in range(10):
            hub.dispatch("p:live:sentiment:s1", orjson.dumps({"i": i}))
        hub.dispatch("p:live:detect:s2", b"{}")
        hub.dispatch("elsewhere", b"{}")
        assert slow.dropped == 7 and other.dropped == 7
        assert [orjson.loads(slow.queue.get_nowait())["result"]["i"] for _ in range(3)] == [7, 8, 9]
        hub.unregister(slow)
        assert hub.dropped == 14 and hub.received == 11

    asyncio.run(scenario())
