"""The one batch consume/commit loop every service runs.

- Adaptive batches of up to ``max_batch`` (:mod:`streamsense.services.kafka.fetching`).
- The handler's ``prepare`` for batch n+1 overlaps ``process`` of batch n, unless the handler
  says not to prefetch (a worker that is behind picks among the newest frames).
- Outputs and consumed offsets become durable together, at-least-once or exactly-once
  (``STREAMSENSE_DELIVERY``; :mod:`streamsense.services.kafka.delivery`).
- A message the handler cannot process goes to ``<topic>.dlq`` with the reason; the loop goes on.
- An output that cannot be delivered (a dead-letter topic missing or not writable, a results
  topic refused) never crashes the loop and is never skipped: nothing at or past it is
  committed, health turns red with the reason, and after a backoff the loop reads again from
  the first unfinished offset of each partition (``_recover``).
- :meth:`BatchLoop.stop` (SIGTERM/SIGINT) drains in-flight work, commits and closes.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streamsense.services.exceptions import ConfigError
from streamsense.services.kafka.clientlog import ClientState
from streamsense.services.kafka.delivery import Delivery, ExactlyOnce, consumer_config, policy
from streamsense.services.kafka.dlq import DeadLetterRouter
from streamsense.services.kafka.emit import emit
from streamsense.services.kafka.exceptions import FatalHandlerError, RewindRequest
from streamsense.services.kafka.fetching import Fetched, adaptive_fetch
from streamsense.services.kafka.handler import BatchHandler, Outcome, P
from streamsense.services.kafka.loop_health import loop_health, loop_problems, record_stats
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.offsets import OffsetTracker, TopicPartitionKey
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.summary import LoopSummary
from streamsense.services.kafka.transactions import transactional_id
from streamsense.services.kafka.watchdog import Watchdog
from streamsense.services.observability import metrics
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)
Points = dict[TopicPartitionKey, int]  # where to read again, per partition

#: Backoff between attempts to re-process a batch whose outputs were not delivered.
RETRY_FIRST_S, RETRY_CAP_S = 0.5, 30.0


class BatchLoop(Generic[P]):
    """``producer`` None: the loop makes its own (transactional for exactly-once)."""

    def __init__(
        self,
        settings: StreamsenseSettings,
        config: LoopConfig,
        handler: BatchHandler[P],
        producer: Producer | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.handler = handler
        self.service = settings.service_name
        self.exactly_once = (config.delivery or settings.delivery) == "exactly-once"
        if producer is None:
            producer = self._new_producer()
        elif self.exactly_once and producer.transactional_id is None:
            msg = "exactly-once delivery needs the loop's own producer: pass producer=None"
            raise ConfigError(msg)
        self.producer = producer
        self._dlq = DeadLetterRouter(producer, self.service, settings.topic_prefix)
        self._tracker = OffsetTracker()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.service}-prep")
        self._pending: tuple[list[Message], Future[P]] | None = None
        self._full = False  # the last fetch filled a batch: the loop is under load
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
            **consumer_config(self.exactly_once, config.commit_interval_ms),
            # results topics are written in transactions: never read an aborted one
            "isolation.level": "read_committed",
            "auto.offset.reset": config.auto_offset_reset,
            "max.poll.interval.ms": config.max_poll_interval_ms,
            "session.timeout.ms": settings.kafka_session_timeout_ms,
            "partition.assignment.strategy": "cooperative-sticky",
            "statistics.interval.ms": config.stats_interval_ms,
            "stats_cb": lambda raw: record_stats(self, raw),
        }
        if settings.kafka_group_instance_id:
            conf["group.instance.id"] = settings.kafka_group_instance_id
        conf.update(config.consumer_config or {})
        self._consumer = Consumer(conf)
        self.delivery = self._new_delivery()
        dlqs = [self._dlq.topic_for(t) for t in config.topics]
        self.watchdog = Watchdog(
            settings.librdkafka_config(),
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

    def _new_producer(self) -> Producer:
        tid = transactional_id(self.settings, self.config.group_id) if self.exactly_once else None
        # linger 0: results leave at once at low load; under load, batches form while requests fly
        return Producer(self.settings, transactional_id=tid, linger_ms=0)

    def _new_delivery(self) -> Delivery:
        interval = self.config.transaction_interval_ms if self.exactly_once else None
        return policy(self.producer, self._consumer, self._tracker, self._on_failure, interval)

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
            self.delivery.start(self._stop, self._summary.maybe_log)
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
        if self._pending is not None and not self.handler.prefetch() and not self._run_pending():
            return
        try:
            raw, woke = self._fetch()
        except KafkaException as exc:
            log.error("consume failed: %s", exc)
            raw, woke = [], False
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
            nxt = (batch, self._prepare(batch, here=woke))
        if woke:  # a quiet stream (nothing pending, nothing buffered): the batch runs now
            self._pending, nxt = nxt, None
        if self._pending is not None and not self._run_pending():
            return  # rewound: the fetched batch is read again
        self._pending = nxt
        self.handler.between_batches()
        self.producer.poll(0)
        self._settle(idle=nxt is None)

    def _prepare(self, batch: list[Message], *, here: bool) -> Future[P]:
        """In the prepare thread (overlapping the pending batch), or ``here`` when there is
        nothing to overlap with (a hand-off there and back costs two thread wake-ups)."""
        if not here:
            return self._pool.submit(self.handler.prepare, batch)
        done: Future[P] = Future()
        try:
            done.set_result(self.handler.prepare(batch))
        except Exception as exc:  # raised where the result is taken, as from the pool
            done.set_exception(exc)
        return done

    def _run_pending(self) -> bool:
        """Run the prepared batch; False when it asked for a rewind (everything after its
        first undelivered record is read again)."""
        assert self._pending is not None
        pending, self._pending = self._pending, None
        try:
            self._run_batch(*pending)
        except RewindRequest as req:
            self._rewind(req.points)
            return False
        return True

    def _fetch(self) -> Fetched:
        n = self.handler.fetch_limit(self.config.max_batch)
        wait_s = self.config.max_wait_ms / 1000
        busy = self._pending is not None
        got = adaptive_fetch(self._consumer, n, busy=busy, full=self._full, max_wait_s=wait_s)
        self._full = len(got.messages) >= n
        return got

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
        except (FatalHandlerError, RewindRequest):
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
            return self.handler.process(self.handler.prepare([m]))[0]
        except (FatalHandlerError, RewindRequest):
            raise
        except Exception as exc:
            return exc

    def _emit(self, batch: list[Message], outcomes: list[Outcome]) -> None:
        ack = self.delivery.batch_ack([_position(m) for m in batch])
        emit(self.producer, self._dlq, ack, batch, outcomes)

    def _on_failure(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason

    def _settle(self, idle: bool) -> None:
        """Make what is finished durable (store offsets, or commit the transaction)."""
        self.delivery.settle(idle)
        if self.delivery.succeeded:
            self.delivery.succeeded = False
            if self.retrying is not None and self._failure is None:
                log.warning("%s: outputs are delivered again; committing", self.service)
                self.retrying, self._attempts = None, 0

    # -- an output that was not delivered -----------------------------------------------------

    def _recover(self) -> None:
        """Settle what is in flight, commit what finished before the failure, then read again
        from the first unfinished offset of each partition, after a backoff."""
        reason, self._failure = self._failure, None
        self.retrying = reason
        self._pending = None  # prepared but not processed: read again below
        if isinstance(self.delivery, ExactlyOnce) and self.delivery.needs_new_producer:
            self._replace_producer()
        points = self._rewind()
        self._attempts += 1
        delay = min(RETRY_CAP_S, RETRY_FIRST_S * 2 ** (self._attempts - 1))
        rewound = ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(points.items()))
        log.error("%s: %s; nothing past it is committed; reading again from %s in %.1f s",
                  self.service, reason, rewound or "the committed offsets", delay)  # fmt: skip
        self._stop.wait(delay)
        self.last_poll = time.monotonic()

    def _rewind(self, override: Points | None = None) -> Points:
        """Forget what is in flight and read again from the first unfinished offset of each
        partition (or from ``override`` where given)."""
        points = {**self.delivery.rewind(), **(override or {})}
        self.delivery.succeeded = False
        for (topic, part), offset in points.items():
            try:
                self._consumer.seek(TopicPartition(topic, part, offset))
            except KafkaException as exc:  # revoked meanwhile: its new owner re-reads it
                log.debug("seek %s[%d]: %s", topic, part, exc)
        return points

    def _replace_producer(self) -> None:
        """A fenced or broken transactional producer cannot go on: start a new one."""
        log.warning("%s: replacing the transactional producer", self.service)
        old, self.producer = self.producer, self._new_producer()
        old.close(0)
        self._dlq = DeadLetterRouter(self.producer, self.service, self.settings.topic_prefix)
        self.delivery = self._new_delivery()
        self.delivery.start(self._stop, self._summary.maybe_log)

    # -- drain, rebalance, shutdown -----------------------------------------------------------

    def _drain(self) -> None:
        """Finish the prepared batch, make every output and its offsets durable."""
        if self._pending is not None and self._failure is None:
            pending, self._pending = self._pending, None
            self._run_batch(*pending)
        if self._failure is None:
            self.delivery.drain()

    def _on_assign(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        self.assignment = sorted({*self.assignment, *((p.topic, p.partition) for p in parts)})
        self.watchdog.assigned(self.assignment)
        log.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in parts])
        starts = self.handler.start_positions([(p.topic, p.partition) for p in parts])
        if starts:  # the handler keeps its own positions: start there, not at the group's
            for p in parts:
                p.offset = starts.get((p.topic, p.partition), p.offset)
            self._consumer.incremental_assign(parts)

    def _on_revoke(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        log.info(
            "revoking %s: draining and committing", [f"{p.topic}[{p.partition}]" for p in parts]
        )
        self._drain()
        gone = [(p.topic, p.partition) for p in parts]
        self._tracker.forget(gone)
        self.assignment = [tp for tp in self.assignment if tp not in gone]

    def _on_lost(self, c: Consumer, parts: list[TopicPartition]) -> None:
        log.warning("partitions lost: %s", [f"{p.topic}[{p.partition}]" for p in parts])
        if self.exactly_once:  # the open round cannot be committed any more: read it again
            self.delivery.lost()
            self._on_failure("partitions lost: the open transaction was aborted")
            gone = [(p.topic, p.partition) for p in parts]
            self.assignment = [tp for tp in self.assignment if tp not in gone]
            return
        # at-least-once: as a revoke; the commit may fail, and the new owner re-reads
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


def _position(m: Message) -> tuple[TopicPartitionKey, int]:
    return (str(m.topic()), int(m.partition() or 0)), int(m.offset() or 0)
