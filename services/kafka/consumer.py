"""The one batch consume/commit loop every service runs.

- Up to ``max_batch`` messages or ``max_wait_ms``, whichever comes first.
- The handler's ``prepare`` for batch n+1 overlaps ``process`` of batch n.
- Offsets are stored only after every output of a message was acknowledged by Kafka
  (``enable.auto.offset.store=false``; the stored offsets are auto-committed), and committed
  synchronously when partitions are revoked and on shutdown.
- A message the handler cannot process goes to ``<topic>.dlq`` with the reason; the loop goes on.
- An output that cannot be delivered (a dead-letter topic missing or not writable, a results
  topic refused) never crashes the loop and is never skipped: nothing at or past it is
  committed, health turns red with the reason, and after a backoff the loop reads again from
  the first unfinished offset of each partition (``_recover``).
- :meth:`BatchLoop.stop` (the runner calls it on SIGTERM/SIGINT) drains in-flight work,
  commits and closes, the producer it was given included (the loop owns it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streamsense.services.kafka.acks import BatchAck
from streamsense.services.kafka.clientlog import ClientState
from streamsense.services.kafka.dlq import DeadLetterRouter, where
from streamsense.services.kafka.exceptions import FatalHandlerError
from streamsense.services.kafka.handler import BatchHandler, Outcome, P
from streamsense.services.kafka.loop_health import loop_health, loop_problems
from streamsense.services.kafka.offsets import OffsetTracker, TopicPartitionKey
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.summary import LoopSummary
from streamsense.services.kafka.watchdog import Watchdog
from streamsense.services.observability import metrics
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)

#: Backoff between attempts to re-process a batch whose outputs were not delivered.
RETRY_FIRST_S, RETRY_CAP_S = 0.5, 30.0


@dataclass(frozen=True)
class LoopConfig:
    topics: Sequence[str]
    group_id: str
    max_batch: int = 64
    max_wait_ms: int = 20
    auto_offset_reset: str = "earliest"
    max_poll_interval_ms: int = 300_000
    commit_interval_ms: int = 1_000
    stats_interval_ms: int = 5_000
    #: topics the handler writes (checked to exist, like the inputs); dead-letter topics too
    output_topics: Sequence[str] = ()
    consumer_config: dict[str, Any] | None = None


class BatchLoop(Generic[P]):
    def __init__(
        self,
        settings: StreamsenseSettings,
        config: LoopConfig,
        handler: BatchHandler[P],
        producer: Producer,
    ) -> None:
        self.settings = settings
        self.config = config
        self.handler = handler
        self.producer = producer
        self.service = settings.service_name
        self._dlq = DeadLetterRouter(producer, self.service)
        self._tracker = OffsetTracker()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.service}-prep")
        self._pending: tuple[list[Message], Future[P]] | None = None
        self._generation = 0
        self._failure: str | None = None  # an output not delivered: the batch is read again
        self.retrying: str | None = None  # the last failure, until a batch succeeds again
        self._attempts = 0
        self.assignment: list[TopicPartitionKey] = []
        self.last_poll = time.monotonic()
        self.processed = 0
        self.running = False
        self.lag: dict[str, int] = {}
        self.client = ClientState.of(self.service, settings.kafka_bootstrap)
        conf: dict[str, Any] = {
            **settings.librdkafka_config(),
            **self.client.librdkafka_config(),
            "group.id": config.group_id,
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": config.commit_interval_ms,
            "auto.offset.reset": config.auto_offset_reset,
            "max.poll.interval.ms": config.max_poll_interval_ms,
            "session.timeout.ms": settings.kafka_session_timeout_ms,
            "partition.assignment.strategy": "cooperative-sticky",
            "statistics.interval.ms": config.stats_interval_ms,
            "stats_cb": self._on_stats,
        }
        if settings.kafka_group_instance_id:
            conf["group.instance.id"] = settings.kafka_group_instance_id
        conf.update(config.consumer_config or {})
        self._consumer = Consumer(conf)
        dlqs = [self._dlq.topic_for(t) for t in config.topics]
        self.watchdog = Watchdog(
            self._consumer,
            config.group_id,
            config.topics,
            [*config.output_topics, *dlqs],
            self.client,
            lambda: self.assignment,
        )
        self._consumed = metrics.MESSAGES_CONSUMED
        self._batch_size = metrics.BATCH_SIZE.labels(self.service)
        self._handler_s = metrics.HANDLER_SECONDS.labels(self.service)
        self._summary = LoopSummary(self)

    # -- control ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish in-flight work, commit and return (thread-safe)."""
        self._stop.set()
        self.handler.stop()

    @property
    def dead_lettered(self) -> int:
        """Messages this loop routed to a dead-letter topic."""
        return self._dlq.sent

    def problems(self) -> list[str]:
        """Why the loop is not doing its job right now (empty when it is)."""
        return loop_problems(self)

    def health(self) -> tuple[bool, dict[str, Any]]:
        return loop_health(self)

    def run(self, max_messages: int | None = None) -> None:
        """Consume until stopped (or until ``max_messages`` were processed)."""
        self._consumer.subscribe(
            list(self.config.topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self.running = True
        self.watchdog.start()
        log.info("%s running (group %s, topics %s)", self.service, self.config.group_id,
                 ", ".join(self.config.topics))  # fmt: skip
        try:
            while not self._stop.is_set():
                if max_messages is not None and self.processed >= max_messages:
                    break
                if self._failure is not None:
                    self._recover()
                    continue
                self._step()
                self._summary.maybe_log()
        finally:
            self.running = False
            self.watchdog.stop()
            self._shutdown()

    # -- one iteration ------------------------------------------------------------------------

    def _step(self) -> None:
        wait = 0.0 if self._pending else self.config.max_wait_ms / 1000
        try:
            raw = self._consumer.consume(self.config.max_batch, wait)
        except KafkaException as exc:
            log.error("consume failed: %s", exc)
            raw = []
        self.last_poll = time.monotonic()
        batch = [m for m in raw if self._usable(m)]
        nxt: tuple[list[Message], Future[P]] | None = None
        if batch:
            consumed = self._tracker.consumed
            per_topic: dict[str, int] = {}
            for m in batch:
                (topic, part), off = _position(m)
                consumed((topic, part), off)
                per_topic[topic] = per_topic.get(topic, 0) + 1
            for topic, n in per_topic.items():
                self._consumed.labels(self.service, topic).inc(n)
            nxt = (batch, self._pool.submit(self.handler.prepare, batch))
        if self._pending is not None:
            self._run_batch(*self._pending)
        self._pending = nxt
        self.handler.between_batches()
        self.producer.poll(0)
        self._store_offsets()

    def _usable(self, m: Message) -> bool:
        err = m.error()
        if err is None:
            return True
        if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            self.watchdog.missing = sorted({*self.watchdog.missing, str(m.topic())})
        elif err.code() != KafkaError._PARTITION_EOF:
            log.error("consumer error on %s: %s", m.topic(), err)
        return False

    def _run_batch(self, batch: list[Message], prepared: Future[P]) -> None:
        start = time.perf_counter()
        try:
            outcomes = self.handler.process(prepared.result())
            if len(outcomes) != len(batch):
                msg = f"handler returned {len(outcomes)} outcomes for {len(batch)} messages"
                raise RuntimeError(msg)  # noqa: TRY301 - handled just below, one by one
        except FatalHandlerError:
            raise
        except Exception as exc:
            log.warning("batch of %d failed (%r); retrying one by one", len(batch), exc)
            outcomes = [self._process_one(m) for m in batch]
        elapsed = time.perf_counter() - start
        self._handler_s.observe(elapsed)
        self._batch_size.observe(len(batch))
        self._summary.batch(len(batch))
        if elapsed * 1000 > self.config.max_poll_interval_ms / 2:
            log.warning(
                "a batch took %.1f s, over half of max.poll.interval.ms: lower max_batch", elapsed
            )
        self._emit(batch, outcomes)
        self.processed += len(batch)

    def _process_one(self, m: Message) -> Outcome:
        try:
            out = self.handler.process(self.handler.prepare([m]))
            return out[0]
        except FatalHandlerError:
            raise
        except Exception as exc:
            return exc

    def _emit(self, batch: list[Message], outcomes: list[Outcome]) -> None:
        """Produce every output; the batch's offsets are finished when all are acknowledged."""
        ack = BatchAck(
            self.producer,
            self._tracker,
            [_position(m) for m in batch],
            self._generation,
            lambda: self._generation,
            self._on_delivery_failure,
        )
        produce = self.producer.produce
        counts = ack.counts
        for m, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self._dead_letter(m, outcome, ack)
                continue
            for rec in outcome:
                ack.pending += 1
                try:
                    produce(rec.topic, rec.value, rec.key, rec.headers, ack)
                except KafkaException as exc:  # e.g. a result larger than message.max.bytes
                    ack.pending -= 1
                    log.error("cannot produce result of %s: %s", where(m), exc)
                    self._dead_letter(m, exc, ack)
                    break
                counts[rec.topic] = counts.get(rec.topic, 0) + 1
        ack.release()

    def _dead_letter(self, m: Message, error: BaseException, ack: BatchAck) -> None:
        ack.pending += 1
        try:
            self._dlq.send(m, error, ack)
        except (KafkaException, BufferError) as exc:
            ack.pending -= 1
            ack.fail_locally(self._dlq.topic_for(str(m.topic())), exc)

    def _on_delivery_failure(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason

    def _store_offsets(self) -> None:
        ready = self._tracker.take_committable()
        if not ready:
            return
        if self.retrying is not None:  # a batch made it through again
            log.warning("%s: outputs are delivered again; committing", self.service)
            self.retrying, self._attempts = None, 0
        tps = [TopicPartition(t, p, o) for (t, p), o in ready.items()]
        try:
            self._consumer.store_offsets(offsets=tps)
        except KafkaException as exc:  # partition no longer assigned
            log.debug("store_offsets: %s", exc)

    # -- an output that was not delivered -----------------------------------------------------

    def _recover(self) -> None:
        """Settle what is in flight, commit what finished before the failure, then read again
        from the first unfinished offset of each partition, after a backoff."""
        reason, self._failure = self._failure, None
        self.retrying = reason
        self._pending = None  # prepared but not processed: read again below
        self.producer.flush(10)
        self._store_offsets()
        self.retrying = reason  # _store_offsets may have cleared it: nothing new succeeded
        points = self._tracker.rewind_points()
        self._tracker.reset()
        self._generation += 1  # acknowledgements of earlier batches no longer finish anything
        for (topic, part), offset in points.items():
            try:
                self._consumer.seek(TopicPartition(topic, part, offset))
            except KafkaException as exc:  # revoked meanwhile: its new owner re-reads it
                log.debug("seek %s[%d]: %s", topic, part, exc)
        self._attempts += 1
        delay = min(RETRY_CAP_S, RETRY_FIRST_S * 2 ** (self._attempts - 1))
        rewound = ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(points.items()))
        log.error("%s: %s; nothing past it is committed; reading again from %s in %.1f s",
                  self.service, reason, rewound or "the committed offsets", delay)  # fmt: skip
        self._stop.wait(delay)
        self.last_poll = time.monotonic()

    # -- drain, rebalance, shutdown -----------------------------------------------------------

    def _drain(self) -> None:
        """Finish the prepared batch, wait for every output's ack, store and commit offsets."""
        if self._pending is not None and self._failure is None:
            pending, self._pending = self._pending, None
            self._run_batch(*pending)
        left = self.producer.flush(30)
        if left:
            log.error("%d outputs still unacknowledged; their sources stay uncommitted", left)
        self._store_offsets()
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit failed: %s", exc)

    def _on_assign(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        self.assignment = sorted({*self.assignment, *((p.topic, p.partition) for p in parts)})
        log.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in parts])

    def _on_revoke(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        log.info(
            "revoking %s: draining and committing", [f"{p.topic}[{p.partition}]" for p in parts]
        )
        self._drain()
        gone = [(p.topic, p.partition) for p in parts]
        self._tracker.forget(gone)
        self.assignment = [tp for tp in self.assignment if tp not in gone]

    def _on_lost(self, c: Consumer, parts: list[TopicPartition]) -> None:
        # Same as a revoke; the commit may fail, and the new owner re-reads (at-least-once).
        log.warning("partitions lost: %s", [f"{p.topic}[{p.partition}]" for p in parts])
        self._on_revoke(c, parts)

    def _shutdown(self) -> None:
        try:
            self._drain()
        finally:
            self._consumer.close()
            self._pool.shutdown(wait=True)
            self.handler.close()
            self.producer.close(0)  # _drain flushed it; a loop owns the producer it was given
            log.info("%s stopped after %d messages", self.service, self.processed)

    def _on_stats(self, raw: str) -> None:
        stats = orjson.loads(raw)
        self.client.on_stats(stats)
        for topic, t in stats.get("topics", {}).items():
            for pid, p in t.get("partitions", {}).items():
                lag = p.get("consumer_lag", -1)
                if pid != "-1" and lag >= 0:
                    metrics.CONSUMER_LAG.labels(self.service, topic, pid).set(lag)
                    self.lag[f"{topic}[{pid}]"] = lag


def _position(m: Message) -> tuple[TopicPartitionKey, int]:
    return (str(m.topic()), int(m.partition() or 0)), int(m.offset() or 0)
