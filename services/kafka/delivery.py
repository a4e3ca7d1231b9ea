"""How a batch loop makes its outputs and its consumed offsets durable: one of two policies.

``at-least-once``: outputs are produced asynchronously; a source offset is stored once every
output of its message was acknowledged (:class:`~streamsense.services.kafka.acks.BatchAck`),
and stored offsets are auto-committed. A crash re-reads what was not committed, so outputs can
repeat (each carries its source reference).

``exactly-once``: a round of batches (results, dead letters) and the offsets that produced it
are one Kafka transaction (:mod:`~streamsense.services.kafka.transactions`); readers with
``read_committed`` see each output once. The consumer commits nothing itself.

Both keep the consumed-but-not-committed offsets in one :class:`OffsetTracker`, which says
where to read again when a round fails.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamsense.services.kafka.acks import BatchAck
from streamsense.services.kafka.offsets import OffsetTracker, TopicPartitionKey
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.transactions import TransactionFailedError, Transactions

log = logging.getLogger(__name__)

Positions = list[tuple[TopicPartitionKey, int]]


class Delivery:
    """What the loop asks of a policy; the at-least-once policy."""

    exactly_once = False

    def __init__(
        self,
        producer: Producer,
        consumer: Consumer,
        tracker: OffsetTracker,
        on_failure: Callable[[str], None],
    ) -> None:
        self.producer = producer
        self.consumer = consumer
        self.tracker = tracker
        self.on_failure = on_failure
        self.generation = 0
        self.succeeded = False  # set when a round became durable since the last look

    def start(self, stop: threading.Event, waiting: Callable[[], None]) -> None:
        """Get ready to deliver, in the loop's thread, calling ``waiting`` while it waits
        (at-least-once: nothing to do)."""

    @staticmethod
    def consumer_config(commit_interval_ms: int) -> dict[str, Any]:
        return {
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": commit_interval_ms,
        }

    def batch_ack(self, positions: Positions) -> BatchAck:
        """The delivery callback of one batch's outputs (call ``release`` after the last)."""
        return BatchAck(
            self.producer,
            self.tracker,
            positions,
            self.generation,
            lambda: self.generation,
            self.on_failure,
        )

    def settle(self, idle: bool, keeping_up: bool = False) -> None:
        """After each loop step: store the offsets whose outputs are all acknowledged.
        ``idle``: nothing was fetched; ``keeping_up``: the last fetch was not a full batch."""
        ready = self.tracker.take_committable()
        if not ready:
            return
        self.succeeded = True
        tps = [TopicPartition(t, p, o) for (t, p), o in ready.items()]
        try:
            self.consumer.store_offsets(offsets=tps)
        except KafkaException as exc:  # partition no longer assigned
            log.debug("store_offsets: %s", exc)

    def drain(self) -> None:
        """Before a revoke or shutdown: deliver everything, then commit synchronously."""
        left = self.producer.flush(30)
        if left:
            log.error("%d outputs still unacknowledged; their sources stay uncommitted", left)
        self.settle(idle=True)
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit failed: %s", exc)

    def rewind(self) -> dict[TopicPartitionKey, int]:
        """After a failure: forget everything in flight; where to read again."""
        self.producer.flush(10)
        self.settle(idle=True)  # what finished before the failure stays committed
        points = self.tracker.rewind_points()
        self.tracker.reset()
        self.generation += 1  # acknowledgements of earlier batches no longer finish anything
        return points

    def lost(self) -> None:
        """Partitions were lost (not revoked): nothing of theirs can be committed any more."""

    def state(self) -> dict[str, Any]:
        return {"delivery": "at-least-once"}


class ExactlyOnce(Delivery):
    exactly_once = True

    def __init__(
        self,
        producer: Producer,
        consumer: Consumer,
        tracker: OffsetTracker,
        on_failure: Callable[[str], None],
        interval_ms: int,
    ) -> None:
        super().__init__(producer, consumer, tracker, on_failure)
        self.txn = Transactions(producer, consumer, interval_ms)
        self._round: list[Positions] = []
        self.needs_new_producer = False

    def start(self, stop: threading.Event, waiting: Callable[[], None]) -> None:
        self.txn.init(stop, waiting)

    @staticmethod
    def consumer_config(commit_interval_ms: int) -> dict[str, Any]:
        return {"enable.auto.commit": False}

    def batch_ack(self, positions: Positions) -> BatchAck:
        self.txn.begin()
        self._round.append(positions)
        ack = super().batch_ack([])  # offsets are finished by the commit, not by the acks
        return ack

    def settle(self, idle: bool, keeping_up: bool = False) -> None:
        if not self.txn.due(idle, keeping_up):
            return
        points = self.tracker.rewind_points()  # where to read again if the commit fails
        finished = self.tracker.finished
        for positions in self._round:
            for tp, off in positions:
                finished(tp, off)
        try:
            self.txn.commit(self.tracker.take_committable())
        except TransactionFailedError as exc:
            # the round was marked finished above: make the tracker say where to read again,
            # so the points survive the loop replacing this object along with a broken producer
            self.tracker.reset()
            for tp, off in points.items():
                self.tracker.consumed(tp, off)
            self.needs_new_producer = exc.fatal
            self.on_failure(str(exc))
            return
        self._round.clear()
        self.succeeded = True

    def drain(self) -> None:
        self.settle(idle=True)

    def rewind(self) -> dict[TopicPartitionKey, int]:
        if not self.txn.abort():
            # fenced (e.g. the transaction timed out on the coordinator while a leader was
            # away): one more failure makes the loop replace the producer before reading again
            self.needs_new_producer = True
            self.on_failure("the transactional producer could not abort: replacing it")
        points = self.tracker.rewind_points()
        self._round.clear()
        self.tracker.reset()
        self.generation += 1
        return points

    def lost(self) -> None:
        # a newer generation owns them: this round's offsets would be fenced at commit
        if not self.txn.abort():
            self.needs_new_producer = True  # the loop's recovery (always next) replaces it
        self._round.clear()

    def state(self) -> dict[str, Any]:
        return {"delivery": "exactly-once", **self.txn.state()}


def policy(
    producer: Producer,
    consumer: Consumer,
    tracker: OffsetTracker,
    on_failure: Callable[[str], None],
    transaction_interval_ms: int | None,
) -> Delivery:
    """Exactly-once with a transaction interval, at-least-once without one."""
    if transaction_interval_ms is None:
        return Delivery(producer, consumer, tracker, on_failure)
    return ExactlyOnce(producer, consumer, tracker, on_failure, transaction_interval_ms)


def consumer_config(exactly_once: bool, commit_interval_ms: int) -> dict[str, Any]:
    return (ExactlyOnce if exactly_once else Delivery).consumer_config(commit_interval_ms)
