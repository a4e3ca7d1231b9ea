"""The sink's batch handler: decode results (and thumbnails) in ``prepare``, write them to Redis
in one pipeline in ``process``, synchronously, so the loop stores offsets only after Redis
acknowledged.

A Redis outage never dead-letters good messages: ``process`` keeps sending the same batch with
backoff (the client's own ``Retry`` first, then this loop) until Redis answers, while the health
check reports unhealthy. Only a stop request during an outage ends it, with
:class:`FatalHandlerError`: the batch's offsets stay uncommitted and it is read again later.
Writes are at-least-once: a batch sent again after a connection broke mid-pipeline may add some
stream entries twice; duplicates carry the same ``source`` reference.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from confluent_kafka import Message
from redis.exceptions import ResponseError

from streamsense.schemas.catalog import TASKS, Task
from streamsense.schemas.registry import decode
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.services.kafka.dlq import where
from streamsense.services.kafka.exceptions import FatalHandlerError
from streamsense.services.kafka.handler import BatchHandler, Outcome
from streamsense.services.observability import metrics as core_metrics
from streamsense.services.serving.clients import TRANSIENT
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.serving.writes import LayoutWriter
from streamsense.services.sink import metrics
from streamsense.services.sink.exceptions import ThumbnailError
from streamsense.services.sink.settings import SinkSettings
from streamsense.services.sink.thumbnails import Thumbnail, frame_headers, make_thumbnail

log = logging.getLogger(__name__)

#: Redis error replies that mean "not now" rather than "never" (the batch is sent again).
_TRANSIENT_REPLIES = ("OOM", "LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
_LAG_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class ResultItem:
    task: Task
    source: str
    value: bytes
    produced_ns: int


Item = ResultItem | Thumbnail | BaseException | None
Prepared = list[Item]


class RedisSinkHandler(BatchHandler[Prepared]):
    def __init__(
        self,
        settings: SinkSettings,
        client: redis.Redis,
        topics: dict[str, Task | None],
    ) -> None:
        """``topics`` maps each consumed topic to its task, or to None for camera frames."""
        self.settings = settings
        self.writer = LayoutWriter(
            RedisKeys(settings.redis_prefix), settings.sink_stream_maxlen, settings.sink_thumb_ttl_s
        )
        self.redis = client
        self.topics = topics
        self.service = settings.service_name
        self.written = 0
        self.retries = 0
        self.redis_ok = True
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thumb_at: dict[str, float] = {}
        self._lag_at = 0.0
        self._redis_s = metrics.REDIS_SECONDS.labels(self.service)
        self._retries = metrics.RETRIES.labels(self.service)
        self._up = metrics.REDIS_UP.labels(self.service)
        self._up.set(1)

    def stop(self) -> None:
        """Give up retrying an unreachable Redis (the loop is shutting down)."""
        self._stop.set()

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.redis_ok, {
            "redis_ok": self.redis_ok,
            "redis_error": self.last_error,
            "written": self.written,
            "redis_retries": self.retries,
        }

    # -- prepare: decode (worker thread) -------------------------------------------------------

    def prepare(self, messages: list[Message]) -> Prepared:
        items: Prepared = [None] * len(messages)
        newest_frame: dict[str, tuple[int, Any]] = {}
        for i, m in enumerate(messages):
            topic = str(m.topic())
            if topic not in self.topics:
                items[i] = ValueError(f"{where(m)}: topic is not consumed by this sink")
                continue
            task = self.topics[topic]
            if task is None:
                self._note_frame(i, m, newest_frame)
                continue
            try:
                result = decode(m.value(), TASKS[task].result_schema)
            except Exception as exc:  # SchemaError: the loop dead-letters it with the reason
                items[i] = exc
                continue
            assert isinstance(result, DetectionResult | SegmentResult | SentimentResult)
            value = m.value()
            assert value is not None
            items[i] = ResultItem(task, result.source_id, value, result.timings.produced_ns)
        for i, meta in newest_frame.values():
            items[i] = self._thumbnail(messages[i], meta)
        return items

    def _note_frame(self, i: int, m: Message, newest: dict[str, tuple[int, Any]]) -> None:
        """Remember the newest frame per camera; older ones in the batch need no thumbnail."""
        try:
            meta = frame_headers(m.headers())
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
        self._thumb_at[meta.camera_id] = now
        return thumb

    def _skip_frame(self, m: Message, exc: Exception) -> None:
        # Frames are the workers' input; their dead letters are the workers' to send.
        log.warning("%s: no thumbnail: %s", where(m), exc)
        core_metrics.SKIPPED.labels(self.service, "bad_frame").inc()

    # -- process: one pipeline per batch (loop thread) -----------------------------------------

    def process(self, prepared: Prepared) -> list[Outcome]:
        outcomes: list[Outcome] = [
            item if isinstance(item, BaseException) else [] for item in prepared
        ]
        todo = [(i, it) for i, it in enumerate(prepared) if isinstance(it, ResultItem | Thumbnail)]
        lag = self._lag_fields()
        if not todo and not lag:
            return outcomes
        replies, owners = self._write_with_retry(lambda pipe: self._fill(pipe, todo, lag))
        for reply, owner in zip(replies, owners, strict=True):
            if owner is not None and isinstance(reply, Exception):
                log.error("redis refused a write of item %d: %s", owner, reply)
                outcomes[owner] = reply
        self._count(todo)
        return outcomes

    def _fill(
        self,
        pipe: Any,
        todo: list[tuple[int, ResultItem | Thumbnail]],
        lag: dict[str, int],
    ) -> list[int | None]:
        """Queue every command of the batch; returns the item index behind each command."""
        owners: list[int | None] = []
        w = self.writer
        now_ms = time.time_ns() // 1_000_000
        latest: dict[tuple[str, str], tuple[int, bytes]] = {}
        sources: set[tuple[str, str]] = set()
        for i, it in todo:
            if isinstance(it, ResultItem):
                owners += [i] * w.result(pipe, it.task, it.source, it.value)
                latest[(it.task, it.source)] = (i, it.value)
                sources.add((it.task, it.source))
            else:
                meta = {"width": it.width, "height": it.height, "seq": it.seq,
                        "capture_ns": it.capture_ns}  # fmt: skip
                owners += [i] * w.thumbnail(pipe, it.camera_id, it.jpeg, meta, now_ms)
        for (task, source), (i, value) in latest.items():
            owners += [i] * w.latest(pipe, task, source, value, now_ms)
        for task, source in sources:
            owners += [None] * w.source(pipe, task, source)
        if lag:
            owners += [None] * w.lag(pipe, lag)
        return owners

    def _write_with_retry(
        self, fill: Callable[[Any], list[int | None]]
    ) -> tuple[list[Any], list[int | None]]:
        attempt = 0
        while True:
            pipe = self.redis.pipeline(transaction=False)
            owners = fill(pipe)
            start = time.perf_counter()
            try:
                replies = pipe.execute(raise_on_error=False)
            except TRANSIENT as exc:
                attempt += 1
                self._on_failure(exc, attempt)
                continue
            busy = next((r for r in replies if _is_transient_reply(r)), None)
            if busy is not None:  # e.g. OOM or LOADING: the whole batch is sent again
                attempt += 1
                self._on_failure(busy, attempt)
                continue
            self._redis_s.observe(time.perf_counter() - start)
            if not self.redis_ok:
                log.info("redis is back after %d retries; catching up", attempt)
            self.redis_ok, self.last_error = True, None
            self._up.set(1)
            return list(replies), owners

    def _on_failure(self, exc: Exception, attempt: int) -> None:
        self.redis_ok, self.last_error = False, f"{type(exc).__name__}: {exc}"
        self._up.set(0)
        self.retries += 1
        self._retries.inc()
        if self._stop.is_set():
            msg = f"stopping while Redis is unreachable ({exc}); the batch stays uncommitted"
            raise FatalHandlerError(msg) from exc
        delay = min(self.settings.sink_retry_cap_s, 0.1 * 2 ** min(attempt - 1, 10))
        log.warning("redis write failed (attempt %d): %s; again in %.1f s", attempt, exc, delay)
        self._stop.wait(delay)

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


def _is_transient_reply(reply: Any) -> bool:
    return isinstance(reply, ResponseError) and str(reply).startswith(_TRANSIENT_REPLIES)
