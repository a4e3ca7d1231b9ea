"""``streamsense sink rebuild``: the Redis serving layer replayed from the results topics.

Kafka is the source of truth and Redis its serving copy: a Redis lost entirely (or restored from
an old AOF) is rebuilt from what the results topics retain (one day by default). For every
results topic and partition, from ``since`` seconds ago (or the oldest retained record) to the
end offsets seen at the start, each valid result (the sink's own contract check) is appended to
its source's stream, trimmed as the sink trims it and not published live; the newest one per
source becomes its latest result (``written_ms`` = the result's Kafka timestamp: when it was
produced, the sink's write time is not in Kafka); the source joins its task's set. All through
the serving layer's :class:`~streamsense.services.serving.writes.LayoutWriter`.

A source's stream is replaced, not appended to (dropped at that source's first replayed result), so
a second rebuild gives the same layout. The end offset replayed on each partition is recorded as the
sink's position there (``sink:positions``), so a sink started afterwards resumes exactly where the
rebuild stopped. Run it with the sink stopped, then start the sink. Results the sink writes while a
rebuild runs may miss their source's history stream. Camera thumbnails (a minute's TTL) and the lag
hash are not rebuilt; the next frames bring them back.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streamsense.schemas.catalog import TASKS, Task, results_topics
from streamsense.schemas.registry import decode_wire
from streamsense.services.kafka.exceptions import KafkaIOError
from streamsense.services.serving.clients import sync_client
from streamsense.services.sink.settings import SinkSettings

log = logging.getLogger(__name__)

#: Results written per pipeline round trip.
PIPELINE = 500
#: A partition that delivers nothing for this long (an open transaction holding the last
#: stable offset back) ends the rebuild of that partition, with a warning.
STALL_S = 30.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``1d`` (or plain seconds) -> seconds; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None or float(match[1]) <= 0:
        msg = f"{text!r} is not a duration: use e.g. 90s, 15m, 2h or 1d"
        raise ValueError(msg)
    return float(match[1]) * _UNITS[match[2] or "s"]


@dataclass
class TaskCount:
    results: int = 0
    invalid: int = 0
    sources: set[str] = field(default_factory=set)


class Rebuild:
    """One rebuild run: ``run()`` returns what was replayed per task."""

    def __init__(
        self, settings: SinkSettings, since_s: float | None, client: redis.Redis | None = None
    ) -> None:
        self.settings = settings
        self.since_s = since_s
        self.topics = {settings.topic(t): task for t, task in results_topics().items()}
        self.writer = settings.layout_writer()
        self.redis = client or sync_client(
            settings.redis_url.get_secret_value(),
            timeout=settings.sink_redis_timeout_s,
            name=f"{settings.service_name}-rebuild",
        )
        self.counts: dict[Task, TaskCount] = {task: TaskCount() for task in self.topics.values()}
        self._latest: dict[tuple[Task, str], tuple[bytes, int]] = {}
        self._pipe = self.redis.pipeline(transaction=False)
        self._queued = 0

    def run(self, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        start = time.monotonic()
        consumer = Consumer({
            **self.settings.librdkafka_config(),
            "group.id": f"{self.settings.service_name}-rebuild-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        })  # fmt: skip
        try:
            ends = self._assign(consumer)
            if progress is not None:
                progress(f"replaying {len(ends)} partitions of {', '.join(sorted(self.topics))}")
            self._consume(consumer, ends)
        except KafkaException as exc:
            msg = f"cannot read the results topics from {self.settings.kafka_bootstrap}: {exc}"
            raise KafkaIOError(msg) from exc
        finally:
            consumer.close()
        for (task, source), (value, ts_ms) in self._latest.items():
            self._queued += self.writer.latest(self._pipe, task, source, value, ts_ms)
            self._queued += self.writer.source(self._pipe, task, source)
            self._queued += self.writer.seen(self._pipe, task, source, ts_ms)
        if ends:  # the sink resumes where the replay ended, applying nothing twice
            positions = {f"{t}[{p}]": end for (t, p), end in ends.items()}
            self._queued += self.writer.positions(self._pipe, positions)
        self._flush()
        return {
            "since_s": self.since_s,
            "seconds": round(time.monotonic() - start, 2),
            "tasks": {
                task: {"results": c.results, "sources": len(c.sources), "invalid": c.invalid}
                for task, c in self.counts.items()
            },
        }

    def _assign(self, consumer: Consumer) -> dict[tuple[str, int], int]:
        """Assign every partition from its start offset; returns the end offset of each."""
        meta = consumer.list_topics(timeout=15)
        starts: list[TopicPartition] = []
        for topic in self.topics:
            t = meta.topics.get(topic)
            if t is None or t.error is not None:
                msg = f"results topic {topic} is missing: run `streamsense topics create`"
                raise KafkaIOError(msg)
            parts = [TopicPartition(topic, p) for p in t.partitions]
            if self.since_s is not None:
                at = int((time.time() - self.since_s) * 1000)
                found = consumer.offsets_for_times(
                    [TopicPartition(topic, p, at) for p in t.partitions], timeout=15
                )
                parts = [tp for tp in found if tp.offset >= 0]  # -1: nothing that recent
            starts += parts
        ends: dict[tuple[str, int], int] = {}
        assign: list[TopicPartition] = []
        for tp in starts:
            low, high = consumer.get_watermark_offsets(tp, timeout=15)
            first = max(low, tp.offset) if tp.offset >= 0 else low
            if high > first:
                ends[(tp.topic, tp.partition)] = high
                assign.append(TopicPartition(tp.topic, tp.partition, first))
        if assign:
            consumer.assign(assign)
        return ends

    def _consume(self, consumer: Consumer, ends: dict[tuple[str, int], int]) -> None:
        left = dict(ends)
        quiet_since = time.monotonic()
        while left:
            batch = consumer.consume(1000, 1.0)
            if batch:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > STALL_S:
                log.warning("rebuild: %s delivered nothing for %.0f s; stopping there",
                            sorted(f"{t}[{p}]" for t, p in left), STALL_S)  # fmt: skip
                return
            for m in batch:
                tp = (str(m.topic()), int(m.partition() or 0))
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        left.pop(tp, None)
                    else:
                        log.warning("rebuild: %s: %s", tp, err)
                    continue
                if tp in left:
                    self._replay(m)
                    if int(m.offset() or 0) >= left[tp] - 1:
                        left.pop(tp)

    def _replay(self, m: Message) -> None:
        task = self.topics[str(m.topic())]
        count = self.counts[task]
        try:
            result, value = decode_wire(m.value(), TASKS[task].result_schema)  # as the sink does
        except Exception:  # the sink dead-lettered it; it has no place in Redis
            count.invalid += 1
            return
        source = str(result.source_id)  # type: ignore[attr-defined]
        if source not in count.sources:
            count.sources.add(source)
            self._queued += self.writer.forget_history(self._pipe, task, source)
        self._queued += self.writer.result(self._pipe, task, source, value, publish=False)
        self._latest[(task, source)] = (value, int(m.timestamp()[1]))
        count.results += 1
        if self._queued >= PIPELINE:
            self._flush()

    def _flush(self) -> None:
        if self._queued:
            self._pipe.execute()
            self._queued = 0
