"""The one batch consume/commit loop every service runs.

- Up to ``max_batch`` messages or ``max_wait_ms``, whichever comes first.
- The handler's ``prepare`` for batch n+1 overlaps ``process`` of batch n.
- Offsets are stored only after every output of a message was acknowledged by Kafka
  (``enable.auto.offset.store=false``; the stored offsets are auto-committed), and committed
  synchronously when partitions are revoked and on shutdown.
- A message the handler cannot process goes to ``<topic>.dlq`` with the reason; the loop goes on.
- :meth:`BatchLoop.stop` (the runner calls it on SIGTERM/SIGINT) drains in-flight work,
  commits and closes, the producer it was given included (the loop owns it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streamsense.services.kafka.dlq import DeadLetterRouter, where
from streamsense.services.kafka.exceptions import DeliveryFailedError, FatalHandlerError
from streamsense.services.kafka.handler import BatchHandler, Outcome, P
from streamsense.services.kafka.offsets import OffsetTracker, TopicPartitionKey
from streamsense.services.kafka.producer import Producer
from streamsense.services.observability import metrics
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)


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
    consumer_config: dict[str, Any] | None = None


#: Client errors that retrying will not fix: the loop reports them in its health.
CONFIG_ERRORS = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError._SSL,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)
#: How long such an error keeps the loop unhealthy after it last occurred.
CLIENT_ERROR_WINDOW_S = 60.0


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
        self._delivery_error: str | None = None
        self._client_error: tuple[float, str] | None = None
        self.assignment: list[TopicPartitionKey] = []
        self.last_poll = time.monotonic()
        self.processed = 0
        self.running = False
        conf: dict[str, Any] = {
            **settings.librdkafka_config(),
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
            "error_cb": self._on_client_error,
        }
        if settings.kafka_group_instance_id:
            conf["group.instance.id"] = settings.kafka_group_instance_id
        conf.update(config.consumer_config or {})
        self._consumer = Consumer(conf)
        self._consumed = metrics.MESSAGES_CONSUMED
        self._batch_size = metrics.BATCH_SIZE.labels(self.service)
        self._handler_s = metrics.HANDLER_SECONDS.labels(self.service)

    # -- control ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish in-flight work, commit and return (thread-safe)."""
        self._stop.set()
        self.handler.stop()

    @property
    def dead_lettered(self) -> int:
        """Messages this loop routed to a dead-letter topic."""
        return self._dlq.sent

    def health(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self.last_poll
        limit = max(30.0, self.config.max_poll_interval_ms / 1000 / 2)
        client_error = self._recent_client_error()
        ok = self.running and age < limit and self._delivery_error is None and client_error is None
        handler_ok, handler_detail = self.handler.health()
        return ok and handler_ok, {
            "service": self.service,
            "assigned": [f"{t}[{p}]" for t, p in self.assignment],
            "last_poll_age_s": round(age, 3),
            "processed": self.processed,
            "in_flight": self.producer.in_flight,
            "delivery_error": self._delivery_error,
            "kafka_error": client_error,
            "dead_lettered": self._dlq.sent,
            **handler_detail,
        }

    def _recent_client_error(self) -> str | None:
        """An authentication, authorization, TLS or fatal client error in the last
        ``CLIENT_ERROR_WINDOW_S`` (librdkafka repeats them on every reconnect while they last)."""
        if self._client_error is None:
            return None
        at, text = self._client_error
        return text if time.monotonic() - at < CLIENT_ERROR_WINDOW_S else None

    def run(self, max_messages: int | None = None) -> None:
        """Consume until stopped (or until ``max_messages`` were processed)."""
        self._consumer.subscribe(
            list(self.config.topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self.running = True
        log.info("%s running (group %s, topics %s)", self.service, self.config.group_id,
                 ", ".join(self.config.topics))  # fmt: skip
        try:
            while not self._stop.is_set():
                if max_messages is not None and self.processed >= max_messages:
                    break
                self._step()
                if self._delivery_error:
                    raise DeliveryFailedError(self._delivery_error)
        finally:
            self.running = False
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
        if err.code() != KafkaError._PARTITION_EOF:
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
        ack = _BatchAck(self, [_position(m) for m in batch])
        produce = self.producer.produce
        counts = ack.counts
        for m, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                ack.pending += 1
                self._dlq.send(m, outcome, ack)
                continue
            for rec in outcome:
                ack.pending += 1
                try:
                    produce(rec.topic, rec.value, rec.key, rec.headers, ack)
                except KafkaException as exc:  # e.g. a result larger than message.max.bytes
                    log.error("cannot produce result of %s: %s", where(m), exc)
                    self._dlq.send(m, exc, ack)
                    break
                counts[rec.topic] = counts.get(rec.topic, 0) + 1
        ack.release()

    def _delivery_failed(self, err: KafkaError, msg: Message) -> None:
        if self._delivery_error is None:
            self._delivery_error = f"output to {msg.topic()} not delivered: {err}"
            log.error("%s: stopping; the source offsets stay uncommitted", self._delivery_error)

    def _store_offsets(self) -> None:
        ready = self._tracker.take_committable()
        if not ready:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in ready.items()]
        try:
            self._consumer.store_offsets(offsets=tps)
        except KafkaException as exc:  # partition no longer assigned
            log.debug("store_offsets: %s", exc)

    # -- drain, rebalance, shutdown -----------------------------------------------------------

    def _drain(self) -> None:
        """Finish the prepared batch, wait for every output's ack, store and commit offsets."""
        if self._pending is not None:
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

    def _on_client_error(self, err: KafkaError) -> None:
        """librdkafka's client-level errors. Broker outages are transient and retried by the
        client itself (logged here); credentials, permissions and TLS are not: they make the
        loop unhealthy, with the reason, until they stop recurring."""
        if err.fatal() or err.code() in CONFIG_ERRORS:
            self._client_error = (time.monotonic(), f"{err.name()}: {err.str()}")
            log.error("%s: kafka client error: %s", self.service, err.str())
        else:
            log.warning("%s: kafka: %s", self.service, err.str())

    def _on_stats(self, raw: str) -> None:
        stats = orjson.loads(raw)
        for topic, t in stats.get("topics", {}).items():
            for pid, p in t.get("partitions", {}).items():
                lag = p.get("consumer_lag", -1)
                if pid != "-1" and lag >= 0:
                    metrics.CONSUMER_LAG.labels(self.service, topic, pid).set(lag)


def _position(m: Message) -> tuple[TopicPartitionKey, int]:
    return (str(m.topic()), int(m.partition() or 0)), int(m.offset() or 0)


@contextmanager
def running(loop: BatchLoop[Any]) -> Iterator[BatchLoop[Any]]:
    """Run ``loop`` in a thread (tests, benchmarks); on exit stop it, let it drain and
    commit, and re-raise the error it ended with, if any."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            loop.run()
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)

    t = threading.Thread(target=target, daemon=True, name=f"loop-{loop.service}")
    t.start()
    try:
        yield loop
    finally:
        loop.stop()
        t.join(60)
        if errors:
            raise errors[0]


class _BatchAck:
    """One delivery callback shared by every output of a batch (cheaper than one per record)."""

    __slots__ = ("counts", "failed", "loop", "pending", "positions")

    def __init__(self, loop: BatchLoop[Any], positions: list[tuple[TopicPartitionKey, int]]):
        self.loop = loop
        self.positions = positions
        self.pending = 1  # held until every output was handed over (see ``release``)
        self.failed = 0
        self.counts: dict[str, int] = {}

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed += 1
            self.loop.producer.account(str(msg.topic()), 0, 1)
            self.loop._delivery_failed(err, msg)
        self.release()

    def release(self) -> None:
        self.pending -= 1
        if self.pending:
            return
        if not self.failed:  # else offsets stay uncommitted: the batch is re-read on restart
            for topic, n in self.counts.items():
                self.loop.producer.account(topic, n)
            finished = self.loop._tracker.finished
            for tp, off in self.positions:
                finished(tp, off)
