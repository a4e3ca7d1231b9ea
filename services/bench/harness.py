"""What the latency and overload benchmarks share: a worker and the sink as real child
processes on topics of their own, a paced load generator in another process, and a tap on the
sink's live channels that times each result from capture to Redis.

Children and generator run in their own interpreters, so none of them shares a lock with the
measurement; the figures are end to end: capture (or read) time in the input record, to the
moment the sink published the result from Redis.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from streamsense.schemas.catalog import TASKS, Task
from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import encode
from streamsense.schemas.text import TextEvent
from streamsense.services.demo.processes import Supervisor
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import TOPICS, ensure_topics, expand
from streamsense.services.local import procs
from streamsense.services.producers.settings import CameraProducerSettings, TextProducerSettings
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.settings import StreamsenseSettings

TEXTS = (
    "checkout finished, customer very happy with the fast delivery",
    "payment failed again, this is terrible and nobody answers",
    "disk usage at 71 percent on node 4",
    "great work, the new release is amazing",
)

log = logging.getLogger(__name__)


@dataclass
class Sample:
    at: float  # monotonic time the result reached the tap
    source: str
    latency_ms: float
    #: capture -> the worker's read, the worker's read -> its produce (of which the model's
    #: call for the batch), its produce -> the tap (ms)
    hops: tuple[float, float, float, float] | None = None


@dataclass
class Tap:
    """Subscribes to every live result channel of one Redis prefix."""

    url: str
    keys: RedisKeys
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._client = redis.Redis.from_url(self.url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(self.keys.channel_pattern)
        self._thread = threading.Thread(target=self._run, daemon=True, name="tap")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._pubsub.get_message(timeout=0.2)
            except (redis.TimeoutError, redis.ConnectionError, TimeoutError) as exc:
                # redis-py can time out inside a reply when the wait ends mid-read; the tap
                # must go on (it once died here, and a run reported 127 of 3,000 results)
                self.errors += 1
                log.warning("tap: %r; reading on", exc)
                continue
            if msg is None:
                continue
            now = time.time_ns()
            body = orjson.loads(msg["data"])
            timings = body.get("timings", {})
            cap = timings.get("capture_ns")
            if cap:
                sample = Sample(time.monotonic(), body["source_id"], (now - cap) / 1e6)
                read, out = timings.get("consumed_ns"), timings.get("produced_ns")
                if read and out:
                    model = float(timings.get("model_ms", 0.0))
                    sample.hops = ((read - cap) / 1e6, (out - read) / 1e6, model, (now - out) / 1e6)
                self.samples.append(sample)

    def window(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pubsub.close()
        self._client.close()


@dataclass
class Rig:
    """A worker and the sink running on topics and a Redis prefix of their own."""

    settings: StreamsenseSettings
    task: Task
    sup: Supervisor
    ports: dict[str, int]
    tap: Tap

    def health(self, name: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.ports[name]}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=3) as r:  # noqa: S310 - loopback
                return dict(json.loads(r.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))

    def metric(self, name: str, sample: str) -> float:
        """The sum of a Prometheus sample (e.g. ``streamsense_model_seconds_sum``)."""
        url = f"http://127.0.0.1:{self.ports[name]}/metrics"
        with urllib.request.urlopen(url, timeout=3) as r:  # noqa: S310 - loopback
            text = r.read().decode()
        return sum(
            s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
            if s.name == sample
        )


@contextmanager
def rig(
    base: StreamsenseSettings, task: Task, work: Path, worker_args: list[str] | None = None
) -> Iterator[Rig]:
    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={"topic_prefix": f"bl{tag}."})
    ensure_topics(settings)  # the sink reads every task's results: all topics, or it is red
    keys = RedisKeys(f"bl{tag}")
    env = {
        "STREAMSENSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "STREAMSENSE_REDIS_URL": settings.redis_url.get_secret_value(),
        "STREAMSENSE_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMSENSE_MODEL_STORE": str(settings.model_store_dir),
        "STREAMSENSE_REDIS_PREFIX": keys.prefix,
        "STREAMSENSE_DELIVERY": settings.delivery,
        "STREAMSENSE_SINK_THUMBNAILS": "false",
    }
    sup = Supervisor(work / "logs", env)
    ports = {"worker": procs.free_port(), "sink": procs.free_port()}
    sup.start("worker", "worker", task, *(worker_args or []),
              env={"STREAMSENSE_METRICS_PORT": str(ports["worker"])})  # fmt: skip
    sup.start("sink", "sink", "redis", env={"STREAMSENSE_METRICS_PORT": str(ports["sink"])})
    tap = Tap(settings.redis_url.get_secret_value(), keys)
    r = Rig(settings, task, sup, ports, tap)
    try:
        deadline = time.monotonic() + 180
        while not all(_ok(r, n) for n in ports):
            if sup.failed() or time.monotonic() > deadline:
                msg = f"worker or sink did not start; logs in {sup.log_dir}"
                raise RuntimeError(msg)
            time.sleep(0.5)  # polling children that load a model; nothing to wait on instead
        yield r
    finally:
        tap.close()
        sup.stop()
        drop_topics(settings)
        drop_keys(settings.redis_url.get_secret_value(), keys)


def drop_topics(settings: StreamsenseSettings) -> None:
    """A bench's prefixed topics are throwaway; deleting them keeps repeated runs from piling
    up (best effort: a leftover prefixed topic is harmless)."""
    admin = AdminClient(settings.librdkafka_config())
    names = [s.name for s in expand(TOPICS, settings.topic_prefix)]
    for fut in admin.delete_topics(names, operation_timeout=10).values():
        with suppress(KafkaException, TimeoutError):
            fut.result(15)


def drop_keys(url: str, keys: RedisKeys) -> None:
    """A bench's prefixed Redis keys are throwaway too (best effort): without this every run
    left its streams, listings and positions in the developer's Redis."""
    client = redis.Redis.from_url(url)
    try:
        found = list(client.scan_iter(match=f"{keys.prefix}:*", count=1000))
        for i in range(0, len(found), 1000):
            client.delete(*found[i : i + 1000])
    except redis.RedisError as exc:
        log.warning("bench keys %s:* left in Redis: %s", keys.prefix, exc)
    finally:
        client.close()


def _ok(r: Rig, name: str) -> bool:
    try:
        return bool(r.health(name).get("ok"))
    except (OSError, ValueError):
        return False


def generate(
    settings: StreamsenseSettings, task: Task, plan: list[tuple[str, float]], seconds: float,
    frames: list[bytes],
) -> int:  # fmt: skip
    """Send ``(source, rate)`` streams for ``seconds`` in another process; returns the count."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        raw = settings.model_dump(mode="json")
        return int(pool.apply(_paced, (raw, task, plan, seconds, frames)))


def _paced(
    raw: dict[str, Any], task: Task, plan: list[tuple[str, float]], seconds: float,
    frames: list[bytes],
) -> int:  # fmt: skip
    settings = StreamsenseSettings.model_validate(raw)
    topic = settings.topic(TASKS[task].input_topic)
    # send as `produce text` / `produce camera` do, with their linger as configured here
    # (STREAMSENSE_TEXT_LINGER_MS / _CAMERA_LINGER_MS): the latency measured includes it
    # and, as `produce text` does with nothing more to read, a line is sent at once when the
    # next one is not due yet (STREAMSENSE_TEXT_SEND_WHEN_IDLE)
    if task == "sentiment":
        text = TextProducerSettings()
        linger_ms, send_when_idle = text.text_linger_ms, text.text_send_when_idle
    else:
        linger_ms, send_when_idle = CameraProducerSettings().camera_linger_ms, False
    p = Producer(settings, linger_ms=linger_ms)
    # independent sources are not in phase: source k of n starts k/n of its period late (in
    # phase, 2 sources at 10/s were 10 pairs a second, and one line of each pair queued behind
    # the other)
    events = sorted(
        ((i + k / len(plan)) / rate, src, i)
        for k, (src, rate) in enumerate(plan)
        for i in range(int(rate * seconds))
    )
    start = time.perf_counter()
    for due, src, i in events:
        while (left := start + due - time.perf_counter()) > 0:
            if send_when_idle and p.in_flight and left >= 0.001:
                p.flush(min(left, 0.05))
            elif left < 0.001:  # poll() counts whole ms: it would spin, taking a core from the rig
                time.sleep(left)
            else:
                p.poll(min(left, 0.002))
        value, headers = _record(task, src, i, frames)
        p.produce(topic, value, key=src, headers=headers)
    p.flush(30)
    p.close(5)
    return len(events)


def _record(
    task: Task, src: str, i: int, frames: list[bytes]
) -> tuple[bytes, list[tuple[str, bytes]] | None]:
    now = time.time_ns()
    if task == "sentiment":
        ev = TextEvent(source_id=src, text=f"{TEXTS[i % len(TEXTS)]} #{i}", ts_ns=now, seq=i,
                       trace_id=f"{src}-{i}")  # fmt: skip
        return encode(ev), None
    h = FrameHeaders(camera_id=src, seq=i, capture_ns=now, width=1280, height=720,
                     trace_id=f"{src}-{i}")  # fmt: skip
    return frames[i % len(frames)], h.to_kafka_headers()
