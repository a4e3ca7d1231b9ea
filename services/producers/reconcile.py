"""After a crash, find lines Kafka has that the checkpoint does not know about yet.

The checkpoint is written after acknowledgements, so a ``kill -9`` between an acknowledgement
and the next checkpoint write (or between the broker appending a batch and the acknowledgement
reaching us) would otherwise re-send those lines. Every record of the text producer carries an
``ss-src`` header (``<producer id> <dev:ino> <line number> <end offset> <seq>``); at start the last
``text_reconcile_scan`` records of each partition of the topic and its DLQ are read back and the
checkpoint is moved past every line found there. Lines older than that window are covered by the
checkpoint alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streamsense.services.kafka.headers import readable_headers
from streamsense.services.producers.checkpoint import Checkpoint, FileCheckpoint
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)

SRC_HEADER = "ss-src"
PATH_HEADER = "ss-src-path"


def src_header(producer_id: str, key: str, lines: int, end: int, seq: int) -> tuple[str, bytes]:
    return SRC_HEADER, f"{producer_id} {key} {lines} {end} {seq}".encode()


@dataclass
class Found:
    source_id: str
    lines: int
    end: int
    seq: int
    path: str | None


def _str(value: str | bytes | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.decode("utf-8", errors="replace")


def _parse(msg: Message, producer_id: str) -> tuple[str, Found] | None:
    raw, readable = readable_headers(msg)
    if not readable:  # a header key that is not UTF-8: not a record this producer wrote
        return None
    headers = {k: _str(v) for k, v in raw}
    parts = (headers.get(SRC_HEADER) or "").split(" ")
    if len(parts) != 5 or not all(p.lstrip("-").isdigit() for p in parts[2:]):
        return None
    pid, key, lines, end, seq = parts
    if pid != producer_id:
        return None
    path = headers.get(PATH_HEADER)
    value = msg.value()
    if path is None and value:
        try:
            path = orjson.loads(value).get("path")
        except (orjson.JSONDecodeError, AttributeError):
            path = None
    source = (msg.key() or b"").decode(errors="replace")
    return key, Found(source, int(lines), int(end), int(seq), path)


def _watermarks(consumer: Consumer, tp: TopicPartition, timeout: float) -> tuple[int, int]:
    """Watermarks, retried while the partition's leader is being elected (a fresh topic)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            return int(low), int(high)
        except KafkaException as exc:
            err = exc.args[0]
            if not getattr(err, "retriable", lambda: False)() or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def scan(
    settings: StreamsenseSettings,
    topics: list[str],
    producer_id: str,
    per_partition: int,
    timeout: float = 15.0,
) -> dict[str, Found]:
    """The newest record of each file of ``producer_id`` in the tail of ``topics``."""
    found: dict[str, Found] = {}
    if per_partition <= 0:
        return found
    consumer = Consumer({**settings.librdkafka_config(),
                         "group.id": f"{settings.service_name}-reconcile",
                         "enable.auto.commit": False, "enable.partition.eof": True})  # fmt: skip
    try:
        meta = consumer.list_topics(timeout=timeout)
        assign: list[TopicPartition] = []
        remaining: set[tuple[str, int]] = set()
        for topic in topics:
            t = meta.topics.get(topic)
            if t is None or t.error is not None:
                continue
            for p in t.partitions:
                low, high = _watermarks(consumer, TopicPartition(topic, p), timeout)
                if high > low:
                    assign.append(TopicPartition(topic, p, max(low, high - per_partition)))
                    remaining.add((topic, p))
        if not assign:
            return found
        consumer.assign(assign)
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        remaining.discard((m.topic(), m.partition()))
                    continue
                parsed = _parse(m, producer_id)
                if parsed is not None:
                    key, f = parsed
                    old = found.get(key)
                    if old is None or f.lines > old.lines:
                        found[key] = f
        if remaining:
            log.warning("reconcile: %d partitions not read to the end in %.0f s", len(remaining),
                        timeout)  # fmt: skip
    except KafkaException as exc:
        log.warning("reconcile skipped (%s): resuming from the checkpoint alone", exc)
    finally:
        consumer.close()
    return found


def apply(ckpt: Checkpoint, found: dict[str, Found]) -> int:
    """Move the checkpoint past every line found in Kafka; returns how many files moved."""
    moved = 0
    for key, f in found.items():
        entry = ckpt.files.get(key)
        if entry is None:
            if f.path is None:
                continue
            entry = ckpt.files[key] = FileCheckpoint(f.path, f.source_id, 0, 0)
        if f.lines > entry.lines:
            log.info("reconcile: %s was acknowledged up to line %d (checkpoint: %d)", entry.path,
                     f.lines, entry.lines)  # fmt: skip
            entry.position, entry.lines = f.end, f.lines
            moved += 1
        if f.seq >= 0:
            ckpt.sources[f.source_id] = max(ckpt.sources.get(f.source_id, 0), f.seq + 1)
    return moved
