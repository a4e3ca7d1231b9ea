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


def _doc(**fields: Any) -> bytes:
    """What the hub forwards: the envelope of a sentiment result of s1 (live.py checks no more),
    with the fields these tests follow."""
    doc = {"schema": "streamsense.result.sentiment", "version": 1, "source_id": "s1"}
    return orjson.dumps({**doc, **fields})


class FakeConnection:
    """A client socket for the hub alone: takes writes while ``can_write``, records closes."""

    def __init__(self, can_write: bool = True) -> None:
        self.can_write = can_write
        self.room = 1 << 20
        self.idle = True  # confirmed all it was sent (see LiveConnection.idle)
        self.probes = 0
        self.open = True
        self.on_writable: Any = None
        self.written = bytearray()
        self.writes = 0
        self.closed: tuple[int, str] | None = None

    def write(self, frames: bytes) -> None:
        self.written += frames
        self.writes += 1

    def probe(self) -> None:
        self.probes += 1

    def close_now(self, code: int, reason: str) -> None:
        self.closed, self.open = (code, reason), False

    def messages(self) -> list[dict[str, Any]]:
        """The text frames written so far (unmasked, payloads under 64 KiB)."""
        out, data = [], bytes(self.written)
        while data:
            assert data[0] == 0x81, "FIN + text"
            n, head = data[1] & 0x7F, 2
            if n == 126:
                n, head = int.from_bytes(data[2:4], "big"), 4
            out.append(orjson.loads(data[head : head + n]))
            data = data[head + n :]
        return out


def test_hub_drops_oldest_per_stalled_client_writes_once_per_flush_and_counts() -> None:
    async def scenario() -> None:
        now = [0.0]
        hub = LiveHub(
            redis=None,  # type: ignore[arg-type]
            keys=RedisKeys("p"),
            queue_size=3,
            clock=lambda: now[0],
        )
        stalled, reader = FakeConnection(can_write=False), FakeConnection()
        slow = hub.register("sentiment", None, stalled)
        other = hub.register(None, "s1", reader)
        for i in range(10):
            hub.dispatch("p:live:sentiment:s1", _doc(i=i))
            if i % 3 == 2:
                now[0] += 1.0
                hub.flush()  # what a turn of the event loop does
        hub.dispatch(
            "p:live:detect:s2", _doc(i=-1, schema="streamsense.result.detection", source_id="s2")
        )
        hub.dispatch("elsewhere", b"{}")
        now[0] += 1.0
        hub.flush()
        # The reader got all ten, three per write; the stalled client keeps the newest three.
        assert [m["result"]["i"] for m in reader.messages()] == list(range(10))
        assert reader.writes == 4
        assert slow.dropped == 7 and other.dropped == 0 and stalled.written == b""
        stalled.can_write = True
        now[0] += 1.0
        stalled.on_writable()  # the transport drained: what waits goes out
        await asyncio.sleep(0)  # one turn of the loop runs the scheduled flush
        assert [m["result"]["i"] for m in stalled.messages()] == [7, 8, 9]
        hub.unregister(slow)
        assert hub.dropped == 7 and hub.received == 11

    asyncio.run(scenario())


def test_many_clients_get_one_write_per_interval_not_one_per_result() -> None:
    """200 clients at 20,000 writes/s: one write per client every 10 ms; what arrives in
    between goes out with the next write, nothing is lost."""

    async def scenario() -> None:
        now = [0.0]
        hub = LiveHub(
            redis=None,  # type: ignore[arg-type]
            keys=RedisKeys("p"),
            writes_per_s=20_000,
            clock=lambda: now[0],
        )
        conns = [FakeConnection() for _ in range(200)]
        for c in conns:
            hub.register(None, None, c)
        for i in range(50):  # 50 results, 1 ms apart: 5 write slots of 10 ms
            hub.dispatch("p:live:sentiment:s1", _doc(i=i))
            hub.flush()
            now[0] += 0.001
        now[0] += 0.01
        hub.flush()
        for c in conns:
            assert [m["result"]["i"] for m in c.messages()] == list(range(50))
            assert c.writes <= 6, c.writes
        one = LiveHub(redis=None, keys=RedisKeys("p"), clock=lambda: now[0])  # type: ignore[arg-type]
        single = FakeConnection()
        one.register(None, None, single)
        for i in range(5):
            one.dispatch("p:live:sentiment:s1", _doc(i=i))
            one.flush()
            now[0] += 0.001
        assert single.writes == 5, "a lone client gets each result at once"

    asyncio.run(scenario())


def test_a_write_takes_what_the_clients_window_has_room_for() -> None:
    async def scenario() -> None:
        now = [0.0]
        hub = LiveHub(redis=None, keys=RedisKeys("p"), clock=lambda: now[0])  # type: ignore[arg-type]
        conn = FakeConnection()
        client = hub.register(None, None, conn)
        for i in range(5):
            hub.dispatch("p:live:sentiment:s1", _doc(i=i, pad="x" * 100))
        frame = len(client.backlog[0])
        conn.room = 2 * frame + 1  # room for two
        hub.flush()
        assert [m["result"]["i"] for m in conn.messages()] == [0, 1]
        assert client in hub._dirty, "the rest waits for a later flush"
        conn.room, conn.idle = 1, False  # no room, and frames it has not confirmed yet:
        now[0] += 1.0
        hub.flush()  # nothing goes, the client is asked (a ping) whether it reads
        assert [m["result"]["i"] for m in conn.messages()] == [0, 1]
        assert conn.probes == 1 and client in hub.stalled
        conn.idle = True  # its pong confirmed everything: a frame larger than the room goes
        hub.check_stalled()
        hub.flush()
        assert [m["result"]["i"] for m in conn.messages()] == [0, 1, 2], "never stuck"
        assert client not in hub.stalled

    asyncio.run(scenario())


def test_hub_closes_a_client_that_takes_nothing_for_the_limit_with_1013() -> None:
    async def scenario() -> None:
        now = [100.0]
        hub = LiveHub(
            redis=None,  # type: ignore[arg-type]
            keys=RedisKeys("p"),
            queue_size=3,
            slow_client_s=5.0,
            clock=lambda: now[0],
        )
        stalled, reader = FakeConnection(can_write=False), FakeConnection()
        hub.register(None, None, stalled)
        hub.register(None, None, reader)
        hub.dispatch("p:live:sentiment:s1", _doc(i=0))
        hub.flush()
        assert hub.stalled == {c for c in hub.clients if c.conn is stalled}
        now[0] += 4.9
        hub.dispatch("p:live:sentiment:s1", _doc(i=1))
        hub.flush()
        hub.check_stalled()
        assert stalled.closed is None, "not yet: 4.9 s < 5 s"
        now[0] += 0.2  # the sweep looks at stalled clients, results or not
        hub.check_stalled()
        assert stalled.closed is not None and stalled.closed[0] == 1013
        assert "too slow" in stalled.closed[1]
        assert hub.evicted == 1 and len(hub.clients) == 1
        assert len(reader.messages()) == 2, "the reader never waited for it"

    asyncio.run(scenario())
