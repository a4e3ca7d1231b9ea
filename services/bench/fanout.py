"""Fan-out latency: a result acknowledged by Kafka -> received by every WebSocket client.

The real path, each stage in its own process as deployed: a producer process sends sentiment
results (timing each from its delivery callback), ``streamsense sink redis`` writes them to
Redis and publishes them, ``streamsense gateway`` fans them out over ``/ws/live`` to N clients
held by this process. Latency is per (client, result); ``ack -> redis`` (the sink's share) is
read from the Redis stream ids afterwards. The producer process is connected and settled
(``GENERATOR_SETTLE_S``) before its first record, and the first ``WARMUP`` results are not
measured. The Kafka broker and Redis must be running
(``streamsense local up``).

With ``idle_clients`` the same measurement runs a second time with that many WebSocket clients
connected that never read (raw sockets, :mod:`.hostile_clients`): the readers' latency with and
without them, and when each idle client was closed. Then one client sends oversized messages
while the gateway's memory is sampled.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
import psutil
import redis
from confluent_kafka import KafkaError, Message
from confluent_kafka.admin import AdminClient
from websockets.asyncio.client import connect

from streamsense.schemas.catalog import Topic, results_topics
from streamsense.schemas.registry import encode
from streamsense.schemas.results import ModelRef, SentimentResult, SourceRef, Timings
from streamsense.services.bench import fanout_idle, fanout_report
from streamsense.services.bench.fanout_report import report
from streamsense.services.exceptions import ServiceError
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import TopicSpec, ensure_topics
from streamsense.services.local import procs
from streamsense.services.serving.keys import JSON_FIELD, RedisKeys
from streamsense.services.settings import StreamsenseSettings

Progress = Callable[[str], None]
SOURCE = "bench-text"
WARMUP = fanout_report.WARMUP


class _Stage:
    """A streamsense service in a child process, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self.proc = procs.start_cli(args, self.log_path, env, append=False)

    def wait_healthy(
        self, url: str, ready: Callable[[dict[str, Any]], bool], timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=1) as res:  # noqa: S310 - our loopback URL
                    if ready(orjson.loads(res.read())):
                        return
            except OSError:  # refused, or 503 (HTTPError) while not ready yet
                pass
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        msg = f"{self.name} did not become ready at {url}:\n{tail}"
        raise ServiceError(msg)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _result(seq: int) -> bytes:
    now = time.time_ns()
    return encode(
        SentimentResult(
            source_id=SOURCE,
            model=ModelRef(name="bench", version="1"),
            source=SourceRef(topic="text", partition=0, offset=seq, seq=seq),
            timings=Timings(
                capture_ns=now, consumed_ns=now, produced_ns=now, model_ms=0.1, batch_size=1
            ),
            label="positive",
            probs={"negative": 0.1, "neutral": 0.1, "positive": 0.8},
            text=f"benchmark line {seq}",
        )
    )


class _Acks:
    """Delivery-callback times (monotonic and wall clock) per sequence number."""

    def __init__(self) -> None:
        self.mono: dict[int, int] = {}
        self.wall: dict[int, int] = {}
        self.failed = 0

    def callback(self, seq: int) -> Callable[[KafkaError | None, Message], None]:
        def _cb(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self.failed += 1
                return
            self.mono[seq] = time.monotonic_ns()
            self.wall[seq] = time.time_ns()

        return _cb


#: Pause between the load generator's start-up and its first record.
GENERATOR_SETTLE_S = 1.0


def _produce(
    settings: StreamsenseSettings, topic: str, seqs: range, rate: float, conn: Connection
) -> None:
    """Runs in its own process (no GIL shared with the clients); sends the ack times back."""
    acks = _Acks()
    producer = Producer(settings, linger_ms=0)
    stop = threading.Event()

    def poll() -> None:  # serve delivery callbacks as they come, so ack times are exact
        while not stop.is_set():
            producer.poll(0.002)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    # The load generator's own start-up (librdkafka's threads, the broker connection, the
    # producer id) must not share the two cores with the measured path: it made the first
    # 0.5 s of results queue up behind it (p99 65-250 ms instead of ~11 ms). Done first.
    producer.list_topics(timeout=10)
    time.sleep(GENERATOR_SETTLE_S)
    start = time.monotonic()
    for i, seq in enumerate(seqs):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the load, not waiting for a condition
        producer.produce(topic, _result(seq), key=SOURCE, on_delivery=acks.callback(seq))
    deadline = time.monotonic() + 30
    while len(acks.mono) + acks.failed < len(seqs) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    poller.join()
    producer.flush(10)
    conn.send((acks.mono, acks.wall, acks.failed))
    conn.close()


def _produce_in_process(
    settings: StreamsenseSettings, topic: str, seqs: range, rate: float, acks: _Acks
) -> None:
    """CLOCK_MONOTONIC is system-wide, so the child's ack times compare with our receive times."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_produce, args=(settings, topic, seqs, rate, child), daemon=True)
    proc.start()
    child.close()
    try:
        acks.mono, acks.wall, acks.failed = parent.recv()
    finally:
        parent.close()
        proc.join(30)


async def _client(
    url: str, received: dict[int, int], ready: asyncio.Event, done: asyncio.Event
) -> None:
    async with connect(url, compression=None, max_size=None, ping_interval=None) as ws:
        hello = orjson.loads(await ws.recv())
        if hello.get("type") != "hello":
            msg = f"unexpected first message {hello}"
            raise ServiceError(msg)
        ready.set()
        while not done.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            t = time.monotonic_ns()
            received[orjson.loads(raw)["result"]["source"]["seq"]] = t


async def _measure(
    url: str, clients: int, start_producing: Callable[[], None], seqs: range
) -> list[dict[int, int]]:
    received: list[dict[int, int]] = [{} for _ in range(clients)]
    readies = [asyncio.Event() for _ in range(clients)]
    done = asyncio.Event()
    tasks = [
        asyncio.create_task(_client(url, received[i], readies[i], done)) for i in range(clients)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
    producing = asyncio.get_running_loop().run_in_executor(None, start_producing)
    await producing
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(len(r) < len(seqs) for r in received):
        await asyncio.sleep(0.05)
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return received


def run(  # noqa: PLR0913 - the benchmark's options
    settings: StreamsenseSettings,
    clients: int = 50,
    messages: int = 1000,
    rate: float = 100.0,
    idle_clients: int = 0,
    rounds: int = 3,
    progress: Progress = lambda _m: None,
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    topic_prefix = f"{settings.topic_prefix}bench.fanout.{run_id}."
    redis_prefix = f"ssbench{run_id}"
    specs = [TopicSpec(t, partitions=1, with_dlq=True) for t in results_topics()]
    scoped = settings.model_copy(update={"topic_prefix": topic_prefix})
    ensure_topics(scoped, specs)
    topic = scoped.topic(Topic.SENTIMENT)
    sink_port, gw_port = procs.free_port(), procs.free_port()
    common = {
        "STREAMSENSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "STREAMSENSE_REDIS_URL": settings.redis_url.get_secret_value(),
        "STREAMSENSE_TOPIC_PREFIX": topic_prefix,
        "STREAMSENSE_REDIS_PREFIX": redis_prefix,
        "STREAMSENSE_LOG_LEVEL": "WARNING",
    }
    stages: list[_Stage] = []
    total = WARMUP + messages
    with tempfile.TemporaryDirectory(prefix="ss-fanout-") as tmp:
        try:
            progress("starting sink and gateway processes")
            sink = _Stage(
                "sink",
                ["sink", "redis", "--no-thumbnails"],
                {
                    **common,
                    "STREAMSENSE_METRICS_PORT": str(sink_port),
                    "STREAMSENSE_SINK_GROUP": f"bench-fanout-{run_id}",
                    "STREAMSENSE_SERVICE_NAME": "bench-fanout-sink",
                },
                Path(tmp),
            )
            stages.append(sink)
            gateway = _Stage("gateway", ["gateway", "--port", str(gw_port)], common, Path(tmp))
            stages.append(gateway)
            sink.wait_healthy(
                f"http://127.0.0.1:{sink_port}/healthz", lambda h: bool(h.get("assigned")), 60
            )
            gateway.wait_healthy(f"http://127.0.0.1:{gw_port}/healthz", lambda h: h["ok"], 30)
            url = f"ws://127.0.0.1:{gw_port}/ws/live?task=sentiment&source={SOURCE}"

            gw_proc = psutil.Process(gateway.proc.pid)
            stats_url = f"http://127.0.0.1:{gw_port}/api/stats"

            def phase(seqs: range) -> fanout_idle.Phase:
                acks = _Acks()
                before = sum(gw_proc.cpu_times()[:2])
                received = asyncio.run(
                    _measure(
                        url,
                        clients,
                        lambda: _produce_in_process(scoped, topic, seqs, rate, acks),
                        seqs,
                    )
                )
                cpu = round(sum(gw_proc.cpu_times()[:2]) - before, 2)
                return fanout_idle.Phase(seqs, acks, received, cpu, round(os.getloadavg()[0], 2))

            progress(f"{clients} clients; {total} results at {rate:g}/s ({WARMUP} warm-up)")
            first = phase(range(total))
            stats = _get_json(stats_url)
            stream_ms = _stream_times(settings, redis_prefix)
            idle: dict[str, Any] = {}
            if idle_clients:
                idle = fanout_idle.compare(
                    first,
                    phase,
                    rounds,
                    idle_clients,
                    gw_port,
                    gateway.proc.pid,
                    lambda: int(_get_json(stats_url)["live_evicted"]),
                    progress,
                )
        finally:
            for stage in reversed(stages):
                stage.stop()
            _cleanup(settings, scoped, specs, redis_prefix)
    out = report(clients, messages, rate, first.acks, first.received, stream_ms, first.seqs)
    out["dropped_for_slow_clients"] = stats.get("live_dropped")
    out["gateway_cpu_s"] = first.gateway_cpu_s
    out["load_average_1m"] = first.load_average_1m
    if idle:
        out["with_idle_clients"] = idle
    return out


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as res:  # noqa: S310 - our loopback URL
        out: dict[str, Any] = orjson.loads(res.read())
    return out


def _stream_times(settings: StreamsenseSettings, prefix: str) -> dict[int, int]:
    """Per sequence number, when the sink wrote it to Redis (the stream id, ms wall clock)."""
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        entries: list[Any] = list(
            client.xrange(RedisKeys(prefix).stream("sentiment", SOURCE)) or []
        )
    finally:
        client.close()
    out: dict[int, int] = {}
    for entry_id, fields in entries:
        seq = orjson.loads(fields[JSON_FIELD.encode()])["source"]["seq"]
        out.setdefault(seq, int(entry_id.split(b"-")[0]))
    return out


def _cleanup(
    settings: StreamsenseSettings, scoped: StreamsenseSettings, specs: list[TopicSpec], prefix: str
) -> None:
    names = [scoped.topic(s.name) for s in specs]
    names += [n + ".dlq" for n in names]
    for fut in AdminClient(settings.librdkafka_config()).delete_topics(names).values():
        try:
            fut.result()
        except Exception:  # noqa: S110 - best effort: a bench must not fail on cleanup
            pass
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
