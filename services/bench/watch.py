"""What ``bench soak`` watches while it runs: end-to-end latency from the sink's live channel,
consumer lag per group from the broker, each child's RSS and its skip/dead-letter counters."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import orjson
import psutil
import redis
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from streamsense.schemas.catalog import TASKS, Topic, results_topics
from streamsense.services.demo.processes import Supervisor
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.settings import StreamsenseSettings

MB = 1024 * 1024
#: consumer group -> the (logical) topics it reads
GROUP_TOPICS: dict[str, tuple[str, ...]] = {
    **{task: (spec.input_topic,) for task, spec in TASKS.items()},
    "sink": (*results_topics(), Topic.FRAMES),
}


class LatencyTap:
    """Subscribes to the sink's live channels; keeps (receive time, task, latency ms)."""

    def __init__(self, url: str, keys: RedisKeys) -> None:
        self.keys = keys
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(keys.channel_pattern)
        self.samples: list[tuple[float, str, float]] = []
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="latency-tap")
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.pubsub.get_message(timeout=0.2)
            if msg is None:
                continue
            now = time.time_ns()
            parsed = self.keys.parse_channel(msg["channel"].decode())
            if parsed is None:
                continue
            task = parsed[0]
            body = orjson.loads(msg["data"])
            cap = body.get("timings", {}).get("capture_ns")
            self.counts[task] = self.counts.get(task, 0) + 1
            if cap:
                self.samples.append((time.monotonic(), task, (now - cap) / 1e6))

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.pubsub.close()
        self.client.close()


class LagProbe:
    """Committed offsets vs end offsets per consumer group, read from the broker."""

    def __init__(self, settings: StreamsenseSettings, groups: dict[str, str]) -> None:
        self.settings = settings
        meta = AdminClient(settings.librdkafka_config()).list_topics(timeout=10).topics
        self.parts = {
            name: [
                TopicPartition(settings.topic(t), p)
                for t in GROUP_TOPICS[name]
                for p in meta[settings.topic(t)].partitions
            ]
            for name in groups
        }
        self.consumers = {
            name: Consumer({**settings.librdkafka_config(), "group.id": group})
            for name, group in groups.items()
        }

    def ends(self) -> dict[str, int]:
        """Records in the input topics so far (sum of end offsets)."""
        out: dict[str, int] = {}
        consumer = self.consumers["sink"]
        unique = {(tp.topic, tp.partition) for parts in self.parts.values() for tp in parts}
        for tp in (TopicPartition(t, p) for t, p in sorted(unique)):
            try:
                high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
            except KafkaException:
                continue
            name = tp.topic[len(self.settings.topic_prefix) :]
            out[name] = out.get(name, 0) + high
        return out

    def lag(self) -> dict[str, int | None]:
        """Messages not yet committed per group; None when the broker did not answer (e.g.
        NOT_LEADER just after the topics were created)."""
        out: dict[str, int | None] = {}
        for name, consumer in self.consumers.items():
            try:
                committed = consumer.committed(self.parts[name], timeout=10)
                total = 0
                for tp in committed:
                    low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
                    total += high - (tp.offset if tp.offset >= 0 else low)
            except KafkaException:
                out[name] = None
                continue
            out[name] = total
        return out

    def close(self) -> None:
        for c in self.consumers.values():
            c.close()


def feed(source: Path, target: Path, per_s: float, stop: threading.Event) -> None:
    """Append ``source``'s lines to ``target`` at ``per_s`` (in 50 ms bursts, no drift)."""
    lines = source.read_text().splitlines()
    start, sent = time.monotonic(), 0
    with target.open("a") as out:
        while not stop.wait(0.05):
            due = int((time.monotonic() - start) * per_s)
            out.writelines(lines[i % len(lines)] + "\n" for i in range(sent, due))
            out.flush()
            sent = due


def scrape(sup: Supervisor) -> dict[str, dict[str, float]]:
    """Skipped (e.g. stale frames) and dead-lettered counts from each service's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[str, float]] = {}
    for child in sup.children:
        port = child.env.get("STREAMSENSE_METRICS_PORT")
        if not port or not child.alive:
            continue
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
                text = resp.read().decode()
        except OSError:
            continue
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "streamsense_skipped_total":
                    key = f"skipped_{sample.labels['reason']}"
                elif sample.name == "streamsense_dlq_total":
                    key = "dead_lettered"
                else:
                    continue
                counts[key] = counts.get(key, 0) + sample.value
        out[child.name] = counts
    return out


def rss_mb(sup: Supervisor) -> dict[str, float]:
    out: dict[str, float] = {}
    for child in sup.children:
        if child.alive and child.proc is not None:
            try:
                out[child.name] = psutil.Process(child.proc.pid).memory_info().rss / MB
            except psutil.Error:
                continue
    return out
