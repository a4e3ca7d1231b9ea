"""Delivery accounting of a batch: one callback object shared by every output of the batch.

A batch's source offsets are marked finished only when every output (results and dead letters)
was acknowledged. One refused output fails the whole batch: its offsets stay unfinished, so
nothing at or past them is committed, and the loop re-reads from there (see
:func:`~streamsense.services.kafka.recovery.recover`). Acknowledgements that arrive after such a
rewind belong to an earlier generation and are ignored, so a stale acknowledgement can never
finish a re-read message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message

from streamsense.services.kafka.offsets import OffsetTracker, TopicPartitionKey
from streamsense.services.kafka.producer import Producer


class BatchAck:
    """``pending`` counts outputs handed over plus one held until :meth:`release` is called
    after the last one, so a batch whose outputs are all acknowledged early still completes
    exactly once."""

    __slots__ = (
        "counts",
        "failed",
        "generation",
        "on_failure",
        "pending",
        "positions",
        "producer",
        "tracker",
        "current",
    )

    def __init__(
        self,
        producer: Producer,
        tracker: OffsetTracker,
        positions: list[tuple[TopicPartitionKey, int]],
        generation: int,
        current: Callable[[], int],
        on_failure: Callable[[str], None],
    ) -> None:
        self.producer = producer
        self.tracker = tracker
        self.positions = positions
        self.generation = generation
        self.current = current
        self.on_failure = on_failure
        self.pending = 1
        self.failed = 0
        self.counts: dict[str, int] = {}

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed += 1
            self.producer.account(str(msg.topic()), 0, 1)
            if self.generation == self.current():  # else its batch is being read again
                self.on_failure(f"output to {msg.topic()} not delivered: {err.str()}")
        self.release()

    def fail_locally(self, topic: str, reason: Any) -> None:
        """An output librdkafka refused before sending it (``produce`` raised)."""
        self.failed += 1
        self.producer.account(topic, 0, 1)
        self.on_failure(f"output to {topic} refused: {reason}")

    def release(self) -> None:
        self.pending -= 1
        if self.pending:
            return
        if self.failed or self.generation != self.current():
            return  # the batch is read again: its offsets must not be finished
        for topic, n in self.counts.items():
            self.producer.account(topic, n)
        finished = self.tracker.finished
        for tp, off in self.positions:
            finished(tp, off)
