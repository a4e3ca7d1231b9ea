"""Analytics benchmark: events/s through the Faust app, and recovery time after kill -9.

1. ``events`` pre-built results (detections and sentiment, ``sources`` sources each) are
   produced to fresh, prefixed result topics before the app starts;
2. the app starts in a child process; the clock runs from its tables being recovered (empty)
   to its health endpoint reporting every event applied: events/s;
3. the app is killed with SIGKILL and started again; recovery time is from the new process'
   start to its health endpoint reporting the recovered tables, whose event count must equal
   the events produced (no loss, no double count), split into the process start and the
   changelog restore.

The child process (:class:`AnalyticsProcess`) is also what the integration tests drive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.admin import AdminClient

from streamsense.schemas.catalog import Topic, results_topics
from streamsense.schemas.registry import encode
from streamsense.services.analytics import synthetic
from streamsense.services.analytics.windows import NS
from streamsense.services.exceptions import ServiceError
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import TOPICS, ensure_topics
from streamsense.services.local import procs
from streamsense.services.settings import StreamsenseSettings


class AnalyticsProcess:
    """``streamsense analytics`` in a child process, watched through its health endpoint."""

    def __init__(self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.port = int(env.get("STREAMSENSE_METRICS_PORT") or procs.free_port())
        self.env = {**env, "STREAMSENSE_METRICS_PORT": str(self.port)}
        self.log_path = log_path
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> AnalyticsProcess:
        self.started_at = time.monotonic()
        self.proc = procs.start_cli(
            ["analytics", *self.args], self.log_path, self.env, new_session=True
        )
        return self

    def health(self) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
                body = r.read()
        except urllib.error.HTTPError as e:
            with e:
                body = e.read()
        except OSError:
            return None
        data: dict[str, Any] = orjson.loads(body)
        return data

    def wait(
        self, check: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """Poll the health endpoint until ``check(health)``; fail with the log's tail."""
        deadline = time.monotonic() + timeout
        h = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            h = self.health()
            if h is not None and check(h):
                return h
            time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        state = "exited" if self.proc is not None and self.proc.poll() is not None else "running"
        msg = (
            f"analytics ({state}): timed out after {timeout:.0f} s waiting for {what}\n"
            f"last health: {h}\n{tail}"
        )
        raise ServiceError(msg)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (SIGKILL after ``timeout``: -9)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return int(self.proc.returncode)

    def close(self) -> None:
        self.kill9()


def produce_load(
    settings: StreamsenseSettings, events: int, sources: int, interval_ms: int = 100
) -> dict[str, int]:
    """Half detections (``sources`` cameras), half sentiment (``sources`` text sources); each
    source's event times ``interval_ms`` apart, so windows keep closing while the app runs."""
    producer = Producer(settings, linger_ms=20)
    det, sen = settings.topic(Topic.DETECTIONS), settings.topic(Topic.SENTIMENT)
    labels = ("negative", "neutral", "positive")
    base = 1_700_000_000 * NS
    sent = {det: 0, sen: 0}
    prebuilt: list[tuple[str, str, bytes]] = []
    for i in range(events):
        src = (i // 2) % sources
        ts = base + (i // sources) * interval_ms * 1_000_000
        if i % 2 == 0:
            r = synthetic.detection(f"cam-{src}", ts, {"person": i % 4, "car": 1}, seq=i)
            prebuilt.append((det, r.source_id, encode(r)))
        else:
            r2 = synthetic.sentiment(f"txt-{src}", ts, labels[i % 3], seq=i)
            prebuilt.append((sen, r2.source_id, encode(r2)))
    for topic, key, value in prebuilt:
        producer.produce(topic, value, key=key)
        sent[topic] += 1
    if producer.flush(120) or producer.failed:
        msg = "could not produce the benchmark load"
        raise ServiceError(msg)
    return sent


def run(
    settings: StreamsenseSettings,
    events: int = 50_000,
    sources: int = 20,
    workdir: Path | None = None,
    progress: Callable[[str], None] = lambda _m: None,
    timeout: float = 600.0,
    extra_env: dict[str, str] | None = None,
    interval_ms: int = 100,
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    prefix = f"{settings.topic_prefix}bench.analytics.{tag}."
    app_id = f"bench-analytics-{tag}"
    work = workdir or settings.home / "bench" / f"analytics-{tag}"
    env = {
        "STREAMSENSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "STREAMSENSE_REDIS_URL": settings.redis_url.get_secret_value(),
        "STREAMSENSE_TOPIC_PREFIX": prefix,
        "STREAMSENSE_HOME": str(work / "home"),
        "STREAMSENSE_ANALYTICS_APP_ID": app_id,
        "STREAMSENSE_REDIS_PREFIX": f"bench.{tag}",
        "STREAMSENSE_LOG_LEVEL": "INFO",
        **(extra_env or {}),
    }
    scoped = settings.model_copy(update={"topic_prefix": prefix})
    inputs = [scoped.topic(Topic.DETECTIONS), scoped.topic(Topic.SENTIMENT)]
    ensure_topics(scoped, [s for s in TOPICS if s.name in results_topics()])
    progress(f"producing {events} results ({sources} cameras + {sources} text sources)")
    produce_load(scoped, events, sources, interval_ms)
    result: dict[str, Any] = {
        "benchmark": "analytics",
        "events": events,
        "sources": sources,
        "event_interval_ms": interval_ms,
    }
    first = AnalyticsProcess(env, work / "run1.log").start()
    try:
        first.wait(lambda h: bool(h.get("recovered")), timeout, "first recovery")
        t0 = time.monotonic()
        result["startup_s"] = round(t0 - first.started_at, 2)
        progress(f"app up in {t0 - first.started_at:.1f} s; processing")
        first.wait(lambda h: h["events"] >= events, timeout, f"{events} events applied")
        elapsed = time.monotonic() - t0
        result["events_per_s"] = round(events / elapsed, 1)
        result["process_s"] = round(elapsed, 2)
        progress(f"{events} events in {elapsed:.2f} s: {events / elapsed:,.0f}/s; kill -9")
        first.kill9()
        replay = uncommitted(scoped, app_id, inputs)
        result["uncommitted_at_kill"] = replay
        result["changelog_records"] = changelog_records(scoped, app_id)
        progress(f"{replay} events uncommitted at the kill; restarting")
        second = AnalyticsProcess(env, work / "run2.log").start()
        try:
            h = second.wait(lambda h: bool(h.get("recovered")), timeout, "recovery")
            recovery = time.monotonic() - second.started_at
            result["recovery_s"] = round(recovery, 2)
            result["recovery_in_app_s"] = round(float(h["recovery_s"]), 2)
            result["recovered_table_events"] = h["table_events"]
            # at-least-once: the replay is skipped as duplicates; exactly-once: the aborted
            # transactions' rows are not restored, so the replay is applied again. Done when
            # every input offset is committed (the count above can be a little high: a commit
            # the killed process had sent may still be applied by the broker after the kill).
            deadline = time.monotonic() + 120
            while uncommitted(scoped, app_id, inputs) and time.monotonic() < deadline:
                time.sleep(0.2)
            result["replay_committed_s"] = round(time.monotonic() - second.started_at, 2)
            h = second.health() or {}
            result["replayed"] = {"skipped": h["duplicates"], "applied_again": h["events"]}
            result["table_events_after_replay"] = h["table_events"]
            result["exact"] = h["table_events"] == events
            progress(f"recovery {recovery:.2f} s; table events {h['table_events']}/{events}")
        finally:
            second.terminate()
    finally:
        first.close()
        _delete_topics(scoped, prefix, app_id)
    overrides = {k.removeprefix("STREAMSENSE_").lower(): v for k, v in (extra_env or {}).items()}
    result["settings"] = {
        "processing_guarantee": overrides.pop("analytics_processing_guarantee", "at_least_once"),
        "table_rows": "idempotent by source offset",
        "store": "memory:// (tables restored from their changelog topics)",
        **overrides,
    }
    return result


def uncommitted(settings: StreamsenseSettings, group: str, topics: list[str]) -> int:
    """Messages in ``topics`` after ``group``'s committed offsets (what a restart reads again)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**settings.librdkafka_config(), "group.id": group, "enable.auto.commit": False})
    try:
        md = c.list_topics(timeout=10)
        tps = [TopicPartition(t, p) for t in topics for p in md.topics[t].partitions]
        total = 0
        for tp in c.committed(tps, timeout=10):
            _, high = c.get_watermark_offsets(tp, timeout=10)
            total += high - (tp.offset if tp.offset >= 0 else 0)
        return total
    finally:
        c.close()


def changelog_records(settings: StreamsenseSettings, app_id: str) -> int:
    """Records in the app's changelog topics (what a restart reads to restore the tables)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**settings.librdkafka_config(), "group.id": f"{app_id}-probe"})
    try:
        md = c.list_topics(timeout=10)
        total = 0
        for name, t in md.topics.items():
            if name.startswith(app_id) and name.endswith("-changelog"):
                for p in t.partitions:
                    low, high = c.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                    total += high - low
        return total
    finally:
        c.close()


def _delete_topics(settings: StreamsenseSettings, prefix: str, app_id: str) -> None:
    admin = AdminClient(settings.librdkafka_config())
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith((prefix, app_id))]
    if names:
        for fut in admin.delete_topics(names).values():
            try:
                fut.result()
            except Exception:  # noqa: S110 - best-effort cleanup of benchmark topics
                pass
