"""One batch of results (and thumbnails) into Redis exactly once: the writes and the consumed
positions in one ``MULTI``/``EXEC``.

Redis holds, per results partition, the next offset to apply (``sink:positions``). Before a
batch is written its positions are read under ``WATCH``; results at offsets below them were
applied already (a batch sent again after a connection broke mid-``EXEC``, or re-read after a
crash) and are skipped; then the remaining writes and the new positions go in one transaction.
The next batch's ``WATCH`` and read are made right after a write
(:mod:`~streamsense.services.sink.positions`).
When partitions are assigned, the sink seeks to the positions Redis holds, so Redis and what
it serves never disagree, whatever dies. If Redis comes back with older positions than this
process wrote (a crash lost the last second of its append-only file) or none at all (it lost
everything), the batch is not written: the sink reads those partitions again from where Redis
is (from the beginning when it has nothing), so nothing is missing either.

A Redis outage never dead-letters good messages: a batch is sent again with backoff (the
client's own ``Retry`` first, then this loop) until Redis answers, while health is red. Only a
stop request during an outage ends it, with :class:`FatalHandlerError`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.client import Pipeline
from redis.exceptions import ResponseError, WatchError

from streamsense.schemas.catalog import TASKS
from streamsense.services.kafka.exceptions import FatalHandlerError, RewindRequest
from streamsense.services.kafka.offsets import TopicPartitionKey
from streamsense.services.serving.clients import TRANSIENT, is_transient_reply
from streamsense.services.serving.writes import LayoutWriter
from streamsense.services.sink import metrics
from streamsense.services.sink.positions import WatchAhead, field_of, position
from streamsense.services.sink.thumbnails import Thumbnail

#: How often (s) the sink drops idle sources from the listings, at most.
FORGET_EVERY_S = 60
#: How often (s) a busy source's TTLs and last-write score are renewed, at most (at most half
#: the source TTL): a command or three per source and minute instead of per batch.
SEEN_EVERY_S = 60
#: Sources whose renewal time is remembered; past this many, the memory starts afresh.
SEEN_REMEMBERED = 100_000

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How often health PINGs Redis while the loop's own writes do not show that it answers (s).
PROBE_EVERY_S = 2.0

#: Kafka's "the beginning of the partition" offset, for a seek.
OFFSET_BEGINNING = -2


@dataclass(frozen=True, slots=True)
class ResultItem:
    task: str
    source: str
    value: bytes
    produced_ns: int
    tp: TopicPartitionKey
    offset: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record of a results partition that the sink dead-letters (``error`` says why)."""

    error: Exception
    tp: TopicPartitionKey
    offset: int


Writable = ResultItem | Thumbnail


class RedisWriter:
    def __init__(
        self,
        client: redis.Redis,
        writer: LayoutWriter,
        service: str,
        retry_cap_s: float,
        stop: threading.Event,
    ) -> None:
        self.redis = client
        self.layout = writer
        self.service = service
        self.retry_cap_s = retry_cap_s
        self._stop = stop
        self.written_positions: dict[TopicPartitionKey, int] = {}
        self.redis_ok = True
        self.last_error: str | None = None
        self._ok_at = -math.inf  # monotonic time Redis last took a call of the loop
        self._probe_at = -math.inf
        self._probe_error: str | None = None
        self.retries = 0
        self._attempts = 0
        self.skipped_applied = 0
        self._ahead = WatchAhead(client, writer.keys.sink_positions)
        #: idle ids leave the listings at most this often (ms), with the batch then written
        self._forget_every_ms = min(FORGET_EVERY_S, writer.source_ttl_s) * 1000
        self._forgot_ms = 0
        self._seen_every_ms = min(SEEN_EVERY_S * 1000, writer.source_ttl_s * 500)
        self._seen_ms: dict[tuple[str, str], int] = {}  # (task, source) -> last renewal
        self._seen_pending: dict[tuple[str, str], int] = {}
        self._redis_s = metrics.REDIS_SECONDS.labels(service)
        self._retries = metrics.RETRIES.labels(service)
        self._up = metrics.REDIS_UP.labels(service)
        self._up.set(1)

    # -- positions ------------------------------------------------------------------------------

    def stored_positions(self, tps: Sequence[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """What Redis holds for ``tps`` (those it has), for a seek on assignment."""
        if not tps:
            return {}
        values = self._retrying(lambda: self.redis.hmget(self.layout.keys.sink_positions,
                                                         [field_of(tp) for tp in tps]))  # fmt: skip
        return {tp: p for tp, v in zip(tps, values, strict=True) if (p := position(v)) is not None}

    # -- one batch ------------------------------------------------------------------------------

    def write(
        self,
        todo: list[tuple[int, Writable]],
        lag: dict[str, int],
        rejected: Sequence[tuple[int, Rejected]] = (),
    ) -> tuple[list[tuple[int, Exception]], set[int]]:
        """Apply the batch once; returns the items Redis refused (index, error), and the
        rejected items that were dead-lettered before (read again below the position and
        not among the offsets kept as not yet committed): they are not dead-lettered again."""
        tps = sorted({it.tp for _, it in todo if isinstance(it, ResultItem)}
                     | {it.tp for _, it in rejected})  # fmt: skip
        # positions are read again on every attempt
        done = self.until_written(lambda: self._attempt(todo, lag, tps, rejected))
        if tps:
            self._ahead.make()
        return done

    def until_written(self, attempt: Callable[[], T]) -> T:
        """``attempt`` (one pipeline, see :meth:`execute`) again until Redis takes it, under the
        outage policy: backoff, health red meanwhile, a stop request ends it with
        :class:`FatalHandlerError`. A reply that is not transient is raised."""
        while True:
            try:
                return attempt()
            except WatchError:  # another sink instance wrote the watched keys meanwhile
                continue
            except TRANSIENT as exc:
                self._on_failure(exc)
            except ResponseError as exc:
                if not is_transient_reply(exc):
                    raise
                self._on_failure(exc)

    def execute(self, pipe: Pipeline) -> list[Any]:
        """Send a filled pipeline; a transient reply in it (``LOADING``) is raised for
        :meth:`until_written` to send it again, and the write counts as Redis answering."""
        start = time.perf_counter()
        replies: list[Any] = pipe.execute(raise_on_error=False)
        busy = next((r for r in replies if is_transient_reply(r)), None)
        if busy is not None:
            raise busy
        self._ok(time.perf_counter() - start)
        return replies

    def _attempt(
        self,
        todo: list[tuple[int, Writable]],
        lag: dict[str, int],
        tps: list[TopicPartitionKey],
        rejected: Sequence[tuple[int, Rejected]],
    ) -> tuple[list[tuple[int, Exception]], set[int]]:
        pipe, stored = self._ahead.pipeline(tps)
        with pipe:
            if tps:
                self._check_lost(stored)
            fresh = [
                (i, it)
                for i, it in todo
                if not isinstance(it, ResultItem) or it.offset >= (stored.get(it.tp) or 0)
            ]
            done_before = self._dead_before(pipe, rejected, stored)
            self.skipped_applied += len(todo) - len(fresh) + len(done_before)
            positions: dict[TopicPartitionKey, int] = {}
            for _, it in fresh:
                if isinstance(it, ResultItem):
                    positions[it.tp] = max(positions.get(it.tp, 0), it.offset + 1)
            dead: dict[TopicPartitionKey, list[int]] = {}
            for i, rej in rejected:
                if i not in done_before:  # the position passes it, its offset is kept
                    positions[rej.tp] = max(positions.get(rej.tp, 0), rej.offset + 1)
                    dead.setdefault(rej.tp, []).append(rej.offset)
            pipe.multi()
            owners = self._fill(pipe, fresh, lag, positions)
            for tp, offsets in dead.items():
                owners += [None] * self.layout.dead_letters(pipe, field_of(tp), offsets)
            replies = self.execute(pipe)
        self.written_positions.update(positions)
        if len(self._seen_ms) + len(self._seen_pending) > SEEN_REMEMBERED:
            self._seen_ms.clear()
        self._seen_ms.update(self._seen_pending)
        refused = [
            (owner, reply)
            for reply, owner in zip(replies, owners, strict=True)
            if owner is not None and isinstance(reply, Exception)
        ]
        return refused, done_before

    def _dead_before(
        self,
        pipe: Any,
        rejected: Sequence[tuple[int, Rejected]],
        stored: dict[TopicPartitionKey, int | None],
    ) -> set[int]:
        """The rejected items below their partition's position whose offsets are not kept as
        dead-lettered: their dead letters were committed before (re-read after a restart or
        a rewind). Those kept are sent again: their round may have been aborted."""
        below = [(i, rej) for i, rej in rejected if rej.offset < (stored.get(rej.tp) or 0)]
        if not below:
            return set()
        scores = [pipe.zscore(self.layout.keys.sink_dead(field_of(r.tp)), r.offset)
                  for _, r in below]  # fmt: skip
        return {i for (i, _), score in zip(below, scores, strict=True) if score is None}

    def forget_dead(self, committed: dict[TopicPartitionKey, int]) -> None:
        """Drop the kept dead-lettered offsets below the group's committed offsets."""
        if committed:
            self._retrying(lambda: self._send(lambda pipe: [
                self.layout.forget_dead(pipe, field_of(tp), below)
                for tp, below in committed.items()
            ]))  # fmt: skip

    def first_dead(self, tps: Sequence[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """The lowest kept dead-lettered offset of each of ``tps`` that has one."""
        if not tps:
            return {}
        keys = [self.layout.keys.sink_dead(field_of(tp)) for tp in tps]
        replies = self._retrying(lambda: self._send(lambda pipe: [
            pipe.zrange(key, 0, 0, withscores=True) for key in keys
        ]))  # fmt: skip
        return {tp: int(got[0][1]) for tp, got in zip(tps, replies, strict=True) if got}

    def _send(self, queue: Any) -> list[Any]:
        """One round trip of the commands ``queue(pipe)`` puts on a fresh pipeline."""
        with self.redis.pipeline(transaction=False) as pipe:
            queue(pipe)
            return list(pipe.execute())

    def _check_lost(self, stored: dict[TopicPartitionKey, int | None]) -> None:
        """Redis holds older positions than this process wrote: it lost writes (a crash after
        the last ``appendfsync``, or a restart without persistence). Read those partitions
        again from where Redis is."""
        behind = {
            tp: OFFSET_BEGINNING if have is None else have
            for tp, have in stored.items()
            if (wrote := self.written_positions.get(tp)) is not None
            and (have is None or have < wrote)
        }
        if behind:
            for tp in behind:
                self.written_positions.pop(tp, None)
            where = ", ".join(
                f"{field_of(tp)}@{'beginning' if o == OFFSET_BEGINNING else o}"
                for tp, o in sorted(behind.items())
            )
            log.warning("%s: Redis lost writes it had acknowledged: re-reading %s",
                        self.service, where)  # fmt: skip
            raise RewindRequest(behind)

    def _fill(
        self,
        pipe: Any,
        todo: list[tuple[int, Writable]],
        lag: dict[str, int],
        positions: dict[TopicPartitionKey, int],
    ) -> list[int | None]:
        """Queue every command of the batch; returns the item index behind each command."""
        owners: list[int | None] = []
        w = self.layout
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
        self._seen_pending = {}
        for task, source in sources:
            owners += [None] * w.source(pipe, task, source)
            last = self._seen_ms.get((task, source))
            if w.source_ttl_s and (last is None or now_ms - last >= self._seen_every_ms):
                owners += [None] * w.seen(pipe, task, source, now_ms)
                self._seen_pending[(task, source)] = now_ms
        if self._forget_every_ms and now_ms - self._forgot_ms >= self._forget_every_ms:
            owners += [None] * w.forget_idle(pipe, TASKS, now_ms)
            self._forgot_ms = now_ms
        if positions:
            owners += [None] * w.positions(pipe, {field_of(tp): o for tp, o in positions.items()})
        if lag:
            owners += [None] * w.lag(pipe, lag)
        return owners

    # -- outages --------------------------------------------------------------------------------

    def _retrying(self, call: Any) -> Any:
        while True:
            try:
                reply = call()
            except TRANSIENT as exc:
                self._on_failure(exc)
                continue
            self._answered()
            return reply

    def _on_failure(self, exc: Exception) -> None:
        self.redis_ok, self.last_error = False, f"{type(exc).__name__}: {exc}"
        self._up.set(0)
        self.retries += 1
        self._attempts += 1
        self._retries.inc()
        if self._stop.is_set():
            msg = f"stopping while Redis is unreachable ({exc}); the batch stays uncommitted"
            raise FatalHandlerError(msg) from exc
        delay = min(self.retry_cap_s, 0.1 * 2 ** min(self._attempts - 1, 10))
        log.warning("redis write failed: %s; again in %.1f s", exc, delay)
        self._stop.wait(delay)

    def probe(self) -> str | None:
        """Why Redis does not answer (None when it does), for health while no write of the loop
        shows it: an idle sink, or one that has not written yet, looked fine with Redis gone
        ("redis_ok": true for as long as no result came). At most one PING per
        ``PROBE_EVERY_S``; a write that worked within that time stands for it."""
        now = time.monotonic()
        if now - self._ok_at < PROBE_EVERY_S:
            return None
        if now - self._probe_at >= PROBE_EVERY_S:
            self._probe_at = now
            try:
                self.redis.ping()
                self._probe_error = None
            except (redis.RedisError, *TRANSIENT) as exc:
                self._probe_error = f"{type(exc).__name__}: {exc}"
        return self._probe_error

    def _ok(self, seconds: float) -> None:
        """A batch's write worked (it took ``seconds``)."""
        self._redis_s.observe(seconds)
        self._answered()

    def _answered(self) -> None:
        """Redis answered a call of the loop: health is green again. Any call counts, not only
        a batch's write: a sink whose reads on assignment failed and then worked, and that has
        had nothing to write since, stayed red with Redis back (its probe was not asked)."""
        self._ok_at = time.monotonic()
        if not self.redis_ok:
            log.info("redis is back after %d retries; catching up", self.retries)
        self.redis_ok, self.last_error = True, None
        self._attempts = 0
        self._up.set(1)
