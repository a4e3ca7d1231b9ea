"""``streamsense bench pipeline``: what Kafka and the streaming machinery cost a worker.

Load generation, stated in the JSON too:
- bare: the worker's own handler (decode or text parsing, model, post-processing, result
  encoding) on pre-loaded messages held in memory, with the same prepare/process overlap, no Kafka;
- pipeline: a backlog of N messages is produced to a fresh input topic first; the worker then
  consumes it and produces results; throughput = N / (last result acknowledged - first consumed);
- latency: a paced producer sends at half the measured pipeline rate while a reader on the
  results topic takes ``receive time - capture time`` per result;
- batching: the same pipeline with one message per model call (max batch 1, as Kafka-ML does).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from skimage import data as skdata

from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import encode
from streamsense.schemas.text import TextEvent
from streamsense.services.kafka.producer import Producer
from streamsense.services.runner import running
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.settings import WorkerSettings

Progress = Callable[[str], None]
TEXTS = [
    "checkout finished, customer very happy with the fast delivery",
    "payment failed again, this is terrible and nobody answers",
    "disk usage at 71 percent on node 4",
    "great work, the new release is amazing",
    "login timeout, angry user reported the outage",
    "backup completed in 3 minutes",
]


class FakeMessage:
    """What the handler needs of a Kafka message, for the bare path."""

    def __init__(self, value: bytes, headers: list[tuple[str, bytes]] | None, key: str, off: int):
        self._v, self._h, self._k, self._o = value, headers, key, off

    def value(self) -> bytes:
        return self._v

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._h

    def key(self) -> str:
        return self._k

    def topic(self) -> str:
        return "bench"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._o


def _frames(n: int) -> list[bytes]:
    """720p JPEGs (quality 80) from scikit-image's photos, shifted so no two are identical."""
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    out = []
    for i in range(n):
        img = cv2.resize(photos[i % len(photos)], (1280, 720))
        img = np.roll(img, i * 7, axis=1)
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
        out.append(buf.tobytes())
    return out


def _input(task: str, i: int, frames: list[bytes]) -> tuple[bytes, list[tuple[str, bytes]] | None]:
    now = time.time_ns()
    if task == "sentiment":
        ev = TextEvent(
            source_id="bench",
            text=f"{TEXTS[i % len(TEXTS)]} #{i}",
            ts_ns=now,
            seq=i,
            trace_id=str(i),
        )
        return encode(ev), None
    h = FrameHeaders(
        camera_id="bench", seq=i, capture_ns=now, width=1280, height=720, trace_id=str(i)
    )
    return frames[i % len(frames)], h.to_kafka_headers()


def _settings(base: WorkerSettings, prefix: str, **kw: Any) -> WorkerSettings:
    """A backlog is the point here: frames are not too old, and the worker never skips frames
    to catch up (``bench overload`` measures that)."""
    update = {"topic_prefix": prefix, "worker_max_frame_age_ms": 0, "worker_latency_budget_ms": 0}
    return base.model_copy(update={**update, **kw})


def _topics(s: WorkerSettings, partitions: int) -> None:
    names = [s.input_topic, s.output_topic, s.input_topic + ".dlq"]
    admin = AdminClient(s.librdkafka_config())
    new = [
        NewTopic(
            n,
            num_partitions=partitions,
            replication_factor=-1,
            config={"max.message.bytes": str(16 * 1024 * 1024)},
        )
        for n in names
    ]
    for fut in admin.create_topics(new).values():
        fut.result()


def _drop_topics(s: WorkerSettings) -> None:
    admin = AdminClient(s.librdkafka_config())
    for fut in admin.delete_topics(
        [s.input_topic, s.output_topic, s.input_topic + ".dlq"]
    ).values():
        fut.result()


def bare(s: WorkerSettings, seconds: float, frames: list[bytes]) -> tuple[float, int]:
    """Items/s of the worker's handler alone, prepare overlapped with process as in the loop.
    The frames are made once, so no age limit or latency budget may skip them as old (they
    did after 5 s: a 10 s run counted half its frames)."""
    s = s.model_copy(update={"worker_max_frame_age_ms": 0, "worker_latency_budget_ms": 0})
    loop, handler = build_worker(s)
    batch = loop.config.max_batch
    msgs = [FakeMessage(*_input(s.task, i, frames), "bench", i) for i in range(batch * 8)]
    batches: list[Any] = [msgs[i : i + batch] for i in range(0, len(msgs), batch)]
    for b in batches[:2]:  # first calls at these shapes pay one-off graph costs
        handler.process(handler.prepare(b))
    pool = ThreadPoolExecutor(1)
    n, i = 0, 0
    nxt = pool.submit(handler.prepare, batches[0])
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        cur = nxt
        i += 1
        nxt = pool.submit(handler.prepare, batches[i % len(batches)])
        outcomes = handler.process(cur.result())
        n += sum(1 for o in outcomes if not isinstance(o, BaseException) and o)
    elapsed = time.perf_counter() - start
    nxt.result()
    pool.shutdown()
    handler.close()
    return n / elapsed, batch


def pipeline(s: WorkerSettings, n: int, frames: list[bytes], progress: Progress) -> float:
    """Saturation throughput through Kafka: backlog first, then consume -> results acked."""
    _topics(s, partitions=1)
    try:
        p = Producer(s)
        for i in range(n):
            value, headers = _input(s.task, i, frames)
            p.produce(s.input_topic, value, key="bench", headers=headers)
        p.flush(120)
        loop, _ = build_worker(s)
        first: list[float] = []
        orig_prepare = loop.handler.prepare

        def prepare(messages: list[Any]) -> Any:
            if not first:
                first.append(time.perf_counter())
            return orig_prepare(messages)

        loop.handler.prepare = prepare  # type: ignore[method-assign]
        progress(f"pipeline: {n} messages, max batch {loop.config.max_batch}")
        loop.run(max_messages=n)  # returns after the drain: every result acknowledged
        end = time.perf_counter()
        if loop.producer.acked < n:
            msg = f"only {loop.producer.acked} of {n} results acknowledged"
            raise RuntimeError(msg)
        return n / (end - first[0])
    finally:
        _drop_topics(s)


def latency(s: WorkerSettings, rate: float, seconds: float, frames: list[bytes]) -> list[float]:
    """End-to-end ms (capture -> result readable in the results topic) at ``rate`` items/s.

    The paced producer and the results reader run in their own process, so they do not share
    the worker's interpreter lock."""
    _topics(s, partitions=1)
    loop, _ = build_worker(s)
    ctx = multiprocessing.get_context("spawn")
    try:
        with running(loop), ctx.Pool(1) as pool:
            wait_assigned(loop)
            return pool.apply(_paced_load, (s.model_dump(mode="json"), rate, seconds, frames))
    finally:
        _drop_topics(s)


def wait_assigned(loop: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not loop.assignment and time.monotonic() < deadline:
        time.sleep(0.05)


def _paced_load(
    raw: dict[str, Any], rate: float, seconds: float, frames: list[bytes]
) -> list[float]:
    s = WorkerSettings.model_validate(raw)
    reader = Consumer(
        {
            **s.librdkafka_config(),
            "group.id": f"lat-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",  # results are written in transactions
            "fetch.wait.max.ms": 5,
        }
    )
    reader.subscribe([s.output_topic])
    p = Producer(s, linger_ms=0)
    lat: list[float] = []
    total = max(int(rate * seconds), 20)
    try:
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            while (now := time.perf_counter()) < due:
                reader_poll(reader, lat, max(0.0, min(due - now, 0.002)))
            value, headers = _input(s.task, i, frames)
            p.produce(s.input_topic, value, key="bench", headers=headers)
            p.poll(0)
        p.flush(10)
        deadline = time.perf_counter() + 30
        while len(lat) < total and time.perf_counter() < deadline:
            reader_poll(reader, lat, 0.05)
    finally:
        reader.close()
    return lat


def reader_poll(reader: Consumer, lat: list[float], timeout: float) -> None:
    for m in reader.consume(500, timeout):
        if m.error() is None:
            cap = orjson.loads(m.value() or b"{}")["timings"]["capture_ns"]
            lat.append((time.time_ns() - cap) / 1e6)


def run(
    base: WorkerSettings, seconds: float, progress: Progress, rounds: int = 3
) -> dict[str, Any]:
    """Bare and pipeline runs alternate for ``rounds`` rounds so both see the same machine
    load; medians are reported with every round's figures."""
    frames = _frames(24) if base.task != "sentiment" else []
    run_id = uuid.uuid4().hex[:6]
    bares: list[float] = []
    pipes: list[float] = []
    batch = 0
    for r in range(rounds):
        progress(f"round {r + 1}/{rounds}: bare path for {seconds:.0f} s")
        bare_rate, batch = bare(_settings(base, f"bench{run_id}b{r}."), seconds, frames)
        n = max(int(bare_rate * seconds), 50)
        pipes.append(pipeline(_settings(base, f"bench{run_id}p{r}."), n, frames, progress))
        bares.append(bare_rate)
    bare_rate, piped = statistics.median(bares), statistics.median(pipes)
    n_single = max(min(int(bare_rate * seconds) // 4, 3000), 20)
    progress(f"one message per model call, {n_single} messages")
    single = pipeline(
        _settings(base, f"bench{run_id}s.", worker_max_batch=1), n_single, frames, progress
    )
    rate = piped / 2
    progress(f"latency at {rate:.0f} items/s for {seconds:.0f} s")
    lat = latency(_settings(base, f"bench{run_id}l."), rate, seconds, frames)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {
        "benchmark": "pipeline",
        "task": base.task,
        "model": base.model_spec[0],
        "max_batch": batch,
        "input": "720p JPEG q80 (scikit-image photos)"
        if base.task != "sentiment"
        else "TextEvent JSON, ~60 characters",
        "bare_items_per_s": round(bare_rate, 1),
        "pipeline_items_per_s": round(piped, 1),
        "ratio": round(piped / bare_rate, 3),
        "bare_runs": [round(x, 1) for x in bares],
        "pipeline_runs": [round(x, 1) for x in pipes],
        "round_ratios": [round(p / b, 3) for p, b in zip(pipes, bares, strict=True)],
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
        "latency_rate_items_per_s": round(rate, 1),
        "latency_samples": len(lat),
        "single_items_per_s": round(single, 1),
        "batching_speedup": round(piped / single, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "load": (
            "bare: pre-loaded messages in memory through the worker's handler; pipeline: a "
            "backlog of bare_rate x seconds messages produced first, then consumed to "
            "acknowledged results; rounds alternate bare and pipeline, medians reported; "
            "latency: paced producer at half the pipeline rate and a reader on the results "
            "topic, both in a separate process; batching: the same pipeline with max batch 1"
        ),
        "topics": f"{base.spec.input_topic} -> {base.spec.results_topic}, 1 partition",
    }


def default_json(task: str) -> Path:
    return Path("bench-results") / f"pipeline-{task}.json"
