"""Bounded reads of ``models.updates`` (a model's history) and ``labels.text`` (recent labels).

Following and announcing is :mod:`streamsense.services.kafka.model_updates`'s job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streamsense.schemas.catalog import Topic
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.registry import decode
from streamsense.schemas.text import LabeledText
from streamsense.services.kafka.model_updates import groupless_consumer
from streamsense.services.learner.exceptions import LearnerError
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)


def _read_ranges(
    consumer: Consumer,
    ranges: dict[tuple[str, int], tuple[int, int]],
    timeout: float,
    on_value: Callable[[Any], None],
) -> None:
    """Read every ``(topic, partition): [start, end)`` range, until done or ``timeout``."""
    todo = {tp: r for tp, r in ranges.items() if r[0] < r[1]}
    if not todo:
        return
    consumer.assign([TopicPartition(t, p, start) for (t, p), (start, _) in todo.items()])
    deadline = time.monotonic() + timeout
    while todo and time.monotonic() < deadline:
        for m in consumer.consume(500, 0.2):
            if m.error() is not None:
                continue
            tp = (str(m.topic()), int(m.partition() or 0))
            if tp in todo and int(m.offset() or 0) < todo[tp][1]:
                on_value(m)
        # done by position, not by the last record: a read_committed reader never receives
        # the marker that ends a transaction (the learner's announcements end with one), nor
        # aborted records, but its position moves past them
        for pos in consumer.position([TopicPartition(t, p) for t, p in todo]):
            if pos.offset >= todo[(pos.topic, pos.partition)][1]:
                todo.pop((pos.topic, pos.partition))
    if todo:
        log.warning("stopped reading after %.0f s with %s unread", timeout, sorted(todo))


def _watermarks(
    consumer: Consumer, topic: str, timeout: float
) -> dict[tuple[str, int], tuple[int, int]]:
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    except KafkaException as exc:
        msg = f"cannot read topic {topic}: {exc}"
        raise LearnerError(msg) from exc
    if meta is None or meta.error is not None:
        msg = f"topic {topic} does not exist (run `streamsense topics create`)"
        raise LearnerError(msg)
    out = {}
    for p in meta.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
        out[(topic, p)] = (int(low), int(high))
    return out


def read_updates(
    settings: StreamsenseSettings, name: str | None = None, timeout: float = 15.0
) -> list[ModelVersion]:
    """Every announcement on ``models.updates`` (of ``name``, if given), oldest first."""
    topic = settings.topic(Topic.MODEL_UPDATES)
    out: list[ModelVersion] = []

    def take(m: Any) -> None:
        if name is not None and m.key() != name.encode():
            return
        try:
            out.append(decode(m.value(), ModelVersion))
        except Exception as exc:  # history shows what it can read
            log.warning("skipping unreadable record %s@%s: %s", topic, m.offset(), exc)

    consumer = groupless_consumer(settings, "history")
    try:
        _read_ranges(consumer, _watermarks(consumer, topic, timeout), timeout, take)
    finally:
        consumer.close()
    return out


def read_recent_labels(
    settings: StreamsenseSettings,
    models: Iterable[str],
    limit: int = 500,
    timeout: float = 15.0,
) -> list[LabeledText]:
    """The last ``limit`` labeled examples on ``labels.text`` for any of ``models``
    (at most ``limit`` records are read per partition)."""
    topic = settings.topic(Topic.LABELS_TEXT)
    wanted = set(models)
    out: list[LabeledText] = []

    def take(m: Any) -> None:
        try:
            ex = decode(m.value(), LabeledText)
        except Exception:  # dead letters of the learner: not evidence
            return
        if ex.model in wanted:
            out.append(ex)

    consumer = groupless_consumer(settings, "recent-labels")
    try:
        marks = _watermarks(consumer, topic, timeout)
        ranges = {tp: (max(low, high - limit), high) for tp, (low, high) in marks.items()}
        _read_ranges(consumer, ranges, timeout, take)
    finally:
        consumer.close()
    out.sort(key=lambda ex: ex.ts_ns)
    return out[-limit:]
