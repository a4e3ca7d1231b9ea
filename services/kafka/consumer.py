"""The one batch consume/commit loop every service runs.

- Adaptive batches of up to ``max_batch`` (:mod:`streamsense.services.kafka.fetching`).
- The handler's ``prepare`` for batch n+1 overlaps ``process`` of batch n, unless the handler
  says not to prefetch (a worker that is behind picks among the newest frames).
- Outputs and consumed offsets become durable together, at-least-once or exactly-once
  (``STREAMSENSE_DELIVERY``; :mod:`streamsense.services.kafka.delivery`).
- A message the handler cannot process goes to ``<topic>.dlq`` with the reason; the loop goes on.
  So does a record the consumer cannot read (:mod:`~streamsense.services.kafka.unreadable`).
- An output that cannot be delivered (a dead-letter topic missing or not writable, a results
  topic refused) never crashes the loop and is never skipped: nothing at or past it is
  committed, health turns red with the reason, and after a backoff the loop reads again from
  the first unfinished offset of each partition (:mod:`~streamsense.services.kafka.recovery`).
- A revoke drains in-flight work and commits before the partitions move on; so does
  :meth:`BatchLoop.stop` (SIGTERM/SIGINT), then the loop closes
  (:mod:`~streamsense.services.kafka.rebalance`).

Here: the loop and one iteration (fetch, prepare, process, emit, settle); its consumer, health
and summary line are in ``loop_consumer``, ``loop_health`` and ``summary`` beside it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Generic

from confluent_kafka import KafkaException, Message

from streamsense.services.exceptions import ConfigError
from streamsense.services.kafka.clientlog import ClientState
from streamsense.services.kafka.delivery import Delivery, policy
from streamsense.services.kafka.dlq import DeadLetterRouter
from streamsense.services.kafka.emit import emit
from streamsense.services.kafka.exceptions import (
    LOOP_SIGNALS,
    HandlerUnavailableError,
    RewindRequest,
)
from streamsense.services.kafka.fetching import Fetched, adaptive_fetch
from streamsense.services.kafka.handler import BatchHandler, Outcome, P
from streamsense.services.kafka.loop_consumer import loop_consumer
from streamsense.services.kafka.loop_health import loop_health, loop_problems, record_stats
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.offsets import OffsetTracker, TopicPartitionKey
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.rebalance import on_assign, on_lost, on_revoke, shutdown
from streamsense.services.kafka.recovery import recover, rewind
from streamsense.services.kafka.summary import LoopSummary
from streamsense.services.kafka.transactions import transactional_id
from streamsense.services.kafka.unreadable import UnreadableRecords, with_unreadable
from streamsense.services.kafka.watchdog import Watchdog
from streamsense.services.observability import metrics
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)


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
        #: (batch with stand-ins of unreadable records, its records, the records prepared)
        self._pending: tuple[list[Message], list[Message], Future[P] | None] | None = None
        self._unreadable = UnreadableRecords()
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
        self._consumer = loop_consumer(
            settings,
            config,
            self.client,
            exactly_once=self.exactly_once,
            on_stats=lambda raw: record_stats(self, raw),
        )
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
            on_assign=partial(on_assign, self),
            on_revoke=partial(on_revoke, self),
            on_lost=partial(on_lost, self),
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
                    recover(self)
                    continue
                self._step()
                self._summary.maybe_log()
        finally:
            self.running = False
            self.watchdog.stop()
            shutdown(self)

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
        batch, readable, errors = self._unreadable.split(self._consumer, raw)
        if self.handler.sees_unreadable:
            readable = batch
        for m in errors:
            self.watchdog.consumer_error(m)
        nxt: tuple[list[Message], list[Message], Future[P] | None] | None = None
        if batch:
            consumed = self._tracker.consumed
            per_topic: dict[str, int] = {}
            for m in batch:
                (topic, part), off = _position(m)
                consumed((topic, part), off)
                per_topic[topic] = per_topic.get(topic, 0) + 1
            for topic, n in per_topic.items():
                self._consumed.labels(self.service, topic).inc(n)
            nxt = (batch, readable, self._prepare(readable, here=woke) if readable else None)
        if woke:  # a quiet stream (nothing pending, nothing buffered): the batch runs now
            self._pending, nxt = nxt, None
        if self._pending is not None and not self._run_pending():
            return  # rewound: the fetched batch is read again
        self._pending = nxt
        self.handler.between_batches()
        self.producer.poll(0)
        self._settle(idle=nxt is None, keeping_up=not self._full)

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
            rewind(self, req.points)
            return False
        except HandlerUnavailableError as exc:  # read again after a backoff (recover)
            self._on_failure(str(exc))
            return False
        return True

    def _fetch(self) -> Fetched:
        n = self.handler.fetch_limit(self.config.max_batch)
        wait_s = self.config.max_wait_ms / 1000
        busy = self._pending is not None
        got = adaptive_fetch(self._consumer, n, busy=busy, full=self._full, max_wait_s=wait_s)
        self._full = len(got.messages) >= n
        return got

    def _run_batch(
        self, batch: list[Message], readable: list[Message], prepared: Future[P] | None
    ) -> None:
        """``batch`` may hold stand-ins of unreadable records (:mod:`.unreadable`): the
        handler sees only the others (``readable``), the stand-ins are dead letters."""
        start = time.perf_counter()
        try:
            done = self.handler.process(prepared.result()) if prepared is not None else []
            if len(done) != len(readable):
                msg = f"handler returned {len(done)} outcomes for {len(readable)} messages"
                raise RuntimeError(msg)  # noqa: TRY301 - handled just below, one by one
        except LOOP_SIGNALS:
            raise
        except Exception as exc:
            log.warning("batch of %d failed (%r); retrying one by one", len(readable), exc)
            done = [self._process_one(m) for m in readable]
        outcomes = with_unreadable(batch, done)
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
        except LOOP_SIGNALS:
            raise
        except Exception as exc:
            return exc

    def _emit(self, batch: list[Message], outcomes: list[Outcome]) -> None:
        ack = self.delivery.batch_ack([_position(m) for m in batch])
        emit(self.producer, self._dlq, ack, batch, outcomes)

    def _on_failure(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason

    def _settle(self, idle: bool, keeping_up: bool = False) -> None:
        """Make what is finished durable (store offsets, or commit the transaction)."""
        self.delivery.settle(idle, keeping_up)
        if self.delivery.succeeded:
            self.delivery.succeeded = False
            if self.retrying is not None and self._failure is None:
                log.warning("%s: outputs are delivered again; committing", self.service)
                self.retrying, self._attempts = None, 0


def _position(m: Message) -> tuple[TopicPartitionKey, int]:
    return (str(m.topic()), int(m.partition() or 0)), int(m.offset() or 0)
