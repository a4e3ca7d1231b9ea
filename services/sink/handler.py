"""The sink's batch handler: decode results (and make thumbnails) in ``prepare``; in
``process`` write them to Redis with their positions in one transaction, synchronously, so
every result is applied exactly once (:mod:`streamsense.services.sink.writer`), and the loop
commits Kafka offsets only after Redis acknowledged. Camera statuses are upserts beside them
(:mod:`streamsense.services.sink.camera_status`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from confluent_kafka import Message

from streamsense.schemas.catalog import TASKS, Task
from streamsense.schemas.registry import decode_wire
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.services.kafka.dlq import where
from streamsense.services.kafka.handler import BatchHandler, Outcome
from streamsense.services.kafka.unreadable import unreadable_error
from streamsense.services.observability import metrics as core_metrics
from streamsense.services.sink import metrics
from streamsense.services.sink.camera_status import StatusItem, StatusWriter, parse_status
from streamsense.services.sink.exceptions import ThumbnailError
from streamsense.services.sink.settings import SinkSettings
from streamsense.services.sink.thumbnails import Thumbnail, frame_headers, make_thumbnail
from streamsense.services.sink.writer import RedisWriter, Rejected, ResultItem

log = logging.getLogger(__name__)

_LAG_EVERY_S = 1.0
#: Cameras whose last thumbnail time is kept before those outside the interval are dropped.
THUMB_REMEMBERED = 10_000


Item = ResultItem | Thumbnail | StatusItem | Rejected | BaseException | None
Prepared = list[Item]


class RedisSinkHandler(BatchHandler[Prepared]):
    #: a record of a results partition that cannot be read is a dead letter whose offset
    #: the Redis position passes, like an invalid result (writer.py); one of ``frames`` is
    #: the workers' to dead-letter, the sink skips it
    sees_unreadable = True

    def __init__(
        self,
        settings: SinkSettings,
        client: redis.Redis,
        topics: dict[str, Task | None],
        status_topic: str | None = None,
    ) -> None:
        """``topics`` maps each consumed topic to its task, or to None for camera frames;
        ``status_topic`` is the camera statuses' topic, when consumed."""
        self.settings = settings
        layout = settings.layout_writer()
        self.redis = client
        self.topics = topics
        self.status_topic = status_topic
        self.service = settings.service_name
        self.written = 0
        self._stop = threading.Event()
        self.writer = RedisWriter(
            client, layout, self.service, settings.sink_retry_cap_s, self._stop
        )
        self.statuses = StatusWriter(self.writer)
        #: camera -> when its last thumbnail was made (monotonic s), for the rate limit; only
        #: cameras inside the interval matter, so the others are dropped once there are many
        #: (camera ids are the producers' choice: invented ones must not grow it for ever)
        self._thumb_at: dict[str, float] = {}
        self._thumb_prune_at = THUMB_REMEMBERED
        self._lag_at = 0.0

    def stop(self) -> None:
        """Give up retrying an unreachable Redis (the loop is shutting down)."""
        self._stop.set()

    @property
    def redis_ok(self) -> bool:
        return self.writer.redis_ok

    @property
    def retries(self) -> int:
        return self.writer.retries

    def health(self) -> tuple[bool, dict[str, Any]]:
        w = self.writer
        unanswered = w.probe() if w.redis_ok else None
        ok = w.redis_ok and unanswered is None
        error = w.last_error or unanswered
        problem = None if ok else f"Redis refuses or cannot be reached: {error}"
        return ok, {
            **({"problem": problem} if problem else {}),
            "redis_ok": ok,
            "redis_error": error,
            "written": self.written,
            "redis_retries": w.retries,
            "already_applied": w.skipped_applied,
        }

    def start_positions(
        self, assigned: list[tuple[str, int]], committed: Callable[[], dict[tuple[str, int], int]]
    ) -> dict[tuple[str, int], int]:
        """Results partitions start where Redis says the sink got to (frames: the group's),
        or at a dead letter below that whose round the group has not committed (a crash
        after Redis took the batch lost it): it is dead-lettered again, and the results
        between are skipped as applied."""
        results = [tp for tp in assigned if self.topics.get(tp[0]) is not None]
        starts = self.writer.stored_positions(results)
        if not results:
            return starts
        done = {tp: o for tp, o in committed().items() if tp in results and o >= 0}
        self.writer.forget_dead(done)
        for tp, first in self.writer.first_dead(results).items():
            if first < starts.get(tp, first + 1) and first >= done.get(tp, 0):
                log.warning("%s[%d]: the dead letter at offset %d may not have been committed: "
                            "reading again from it", *tp, first)  # fmt: skip
                starts[tp] = first
        return starts

    # -- prepare: decode (worker thread) -------------------------------------------------------

    def prepare(self, messages: list[Message]) -> Prepared:
        items: Prepared = [None] * len(messages)
        newest_frame: dict[str, tuple[int, Any]] = {}
        for i, m in enumerate(messages):
            topic = str(m.topic())
            if (unreadable := unreadable_error(m)) is not None:
                items[i] = self._unreadable(m, unreadable)
                continue
            if topic == self.status_topic:
                items[i] = self._status(m)
                continue
            if topic not in self.topics:
                items[i] = ValueError(f"{where(m)}: topic is not consumed by this sink")
                continue
            task = self.topics[topic]
            if task is None:
                self._note_frame(i, m, newest_frame)
                continue
            try:
                # what is stored and served is what was validated (a key given twice in the
                # record must not mean one thing here and another to a reader of Redis)
                result, value = decode_wire(m.value(), TASKS[task].result_schema)
            except Exception as exc:  # SchemaError: the loop dead-letters it with the reason
                items[i] = Rejected(exc, (topic, int(m.partition() or 0)), int(m.offset() or 0))
                continue
            assert isinstance(result, DetectionResult | SegmentResult | SentimentResult)
            tp = (topic, int(m.partition() or 0))
            items[i] = ResultItem(
                task, result.source_id, value, result.timings.produced_ns, tp, int(m.offset() or 0)
            )
        for i, meta in newest_frame.values():
            items[i] = self._thumbnail(messages[i], meta)
        return items

    def _unreadable(self, m: Message, error: Exception) -> Item:
        topic = str(m.topic())
        if self.topics.get(topic, "") is None:  # a frame: its dead letter is the workers'
            self._skip_frame(m, error)
            return None
        if topic in self.topics:
            return Rejected(error, (topic, int(m.partition() or 0)), int(m.offset() or 0))
        return error

    def _status(self, m: Message) -> StatusItem | Exception:
        try:
            return parse_status(m)
        except Exception as exc:  # SchemaError: the loop dead-letters it with the reason
            return exc

    def _note_frame(self, i: int, m: Message, newest: dict[str, tuple[int, Any]]) -> None:
        """Remember the newest frame per camera; older ones in the batch need no thumbnail."""
        try:
            meta = frame_headers(m)
        except ThumbnailError as exc:
            self._skip_frame(m, exc)
            return
        seen = newest.get(meta.camera_id)
        if seen is None or meta.seq >= seen[1].seq:
            newest[meta.camera_id] = (i, meta)

    def _thumbnail(self, m: Message, meta: Any) -> Thumbnail | None:
        now = time.monotonic()
        gap = self.settings.sink_thumb_min_interval_ms / 1000
        if now - self._thumb_at.get(meta.camera_id, -1e9) < gap:
            return None
        try:
            thumb = make_thumbnail(
                m.value() or b"",
                meta,
                self.settings.sink_thumb_width,
                self.settings.sink_thumb_quality,
            )
        except ThumbnailError as exc:
            self._skip_frame(m, exc)
            return None
        if gap > 0:
            self._remember_thumb(meta.camera_id, now, gap)
        return thumb

    def _remember_thumb(self, camera: str, now: float, gap: float) -> None:
        self._thumb_at[camera] = now
        if len(self._thumb_at) > self._thumb_prune_at:
            self._thumb_at = {c: t for c, t in self._thumb_at.items() if now - t < gap}
            # cameras all inside the interval stay; prune again once they have doubled
            self._thumb_prune_at = max(THUMB_REMEMBERED, 2 * len(self._thumb_at))

    def _skip_frame(self, m: Message, exc: Exception) -> None:
        # Frames are the workers' input; their dead letters are the workers' to send.
        log.warning("%s: no thumbnail: %s", where(m), exc)
        core_metrics.SKIPPED.labels(self.service, "bad_frame").inc()

    # -- process: one pipeline per batch (loop thread) -----------------------------------------

    def process(self, prepared: Prepared) -> list[Outcome]:
        outcomes: list[Outcome] = [
            item.error if isinstance(item, Rejected)
            else item if isinstance(item, BaseException) else []
            for item in prepared
        ]  # fmt: skip
        todo = [(i, it) for i, it in enumerate(prepared) if isinstance(it, ResultItem | Thumbnail)]
        rejected = [(i, it) for i, it in enumerate(prepared) if isinstance(it, Rejected)]
        statuses = [(i, it) for i, it in enumerate(prepared) if isinstance(it, StatusItem)]
        lag = self._lag_fields()
        refused: list[tuple[int, Exception]] = []
        if todo or lag or rejected:
            refused, done_before = self.writer.write(todo, lag, rejected)
            for i in done_before:  # dead-lettered and committed before: not twice
                outcomes[i] = []
        if statuses:
            refused += self.statuses.write(statuses)
            metrics.WRITTEN.labels(self.service, "camera_status").inc(len(statuses))
        for owner, error in refused:
            log.error("redis refused a write of item %d: %s", owner, error)
            outcomes[owner] = error
        self._count(todo)
        return outcomes

    def _count(self, todo: list[tuple[int, ResultItem | Thumbnail]]) -> None:
        now = time.time_ns()
        for _, it in todo:
            if isinstance(it, ResultItem):
                metrics.WRITTEN.labels(self.service, it.task).inc()
                age = max(0.0, (now - it.produced_ns) / 1e9)
                metrics.RESULT_AGE.labels(self.service, it.task).observe(age)
            else:
                metrics.WRITTEN.labels(self.service, "thumbnail").inc()
        self.written += len(todo)

    def _lag_fields(self) -> dict[str, int]:
        """Consumer lag per ``topic[partition]`` (from librdkafka statistics), once a second."""
        now = time.monotonic()
        if now - self._lag_at < _LAG_EVERY_S:
            return {}
        self._lag_at = now
        lag: dict[str, int] = {}
        for family in core_metrics.CONSUMER_LAG.collect():
            for sample in family.samples:
                if sample.labels.get("service") == self.service:
                    lag[f"{sample.labels['topic']}[{sample.labels['partition']}]"] = int(
                        sample.value
                    )
        return lag
