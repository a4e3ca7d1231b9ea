"""Handing one batch's outcomes to Kafka: each result to its topic, each failure to the
dead-letter topic with its reason. The batch's offsets are finished when every record is
acknowledged (:class:`~streamsense.services.kafka.acks.BatchAck`).

An input whose output is larger than its catalogue topic accepts (the dead-letter budget,
counted uncompressed) is dead-lettered instead (:class:`OutputTooLargeError`): the broker would
refuse that record on every retry of the batch, and its partition would stall behind it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import KafkaException, Message

from streamsense.services.kafka.acks import BatchAck
from streamsense.services.kafka.dlq import DeadLetterRouter, where
from streamsense.services.kafka.exceptions import OutputTooLargeError
from streamsense.services.kafka.handler import Outcome, OutRecord
from streamsense.services.kafka.producer import Producer

log = logging.getLogger(__name__)


def emit(
    producer: Producer,
    dlq: DeadLetterRouter,
    ack: BatchAck,
    batch: Sequence[Message],
    outcomes: Sequence[Outcome],
) -> None:
    """Produce every output of ``batch`` under ``ack``, then release it."""
    produce = producer.produce
    counts = ack.counts
    for m, outcome in zip(batch, outcomes, strict=True):
        if not isinstance(outcome, BaseException):
            outcome = _oversized(dlq, outcome) or outcome
        if isinstance(outcome, BaseException):
            dead_letter(dlq, m, outcome, ack)
            continue
        for rec in outcome:
            ack.pending += 1
            try:
                produce(rec.topic, rec.value, rec.key, rec.headers, ack)
            except KafkaException as exc:  # e.g. a result larger than message.max.bytes
                ack.pending -= 1
                log.error("cannot produce result of %s: %s", where(m), exc)
                dead_letter(dlq, m, exc, ack)
                break
            counts[rec.topic] = counts.get(rec.topic, 0) + 1
    ack.release()


def _oversized(dlq: DeadLetterRouter, records: Sequence[OutRecord]) -> OutputTooLargeError | None:
    """Why one of ``records`` cannot be produced (larger than its topic accepts), or None.
    Checked before any is produced, so an input's outputs go all or none."""
    for rec in records:
        budget = dlq.output_budget(rec.topic)
        if budget is None:
            continue
        size = len(rec.value) + _length(rec.key)
        size += sum(len(k.encode()) + _length(v) for k, v in rec.headers or ())
        if size > budget:
            msg = (
                f"its output for {rec.topic} is {size} bytes, over the {budget} bytes that topic "
                "accepts: not produced (the broker would refuse it on every retry)"
            )
            return OutputTooLargeError(msg)
    return None


def _length(data: bytes | str | None) -> int:
    return 0 if data is None else len(data.encode() if isinstance(data, str) else data)


def dead_letter(dlq: DeadLetterRouter, m: Message, error: BaseException, ack: BatchAck) -> None:
    """Route ``m`` to its dead-letter topic; a record that cannot even be queued fails the
    batch's delivery (read again later), it is never dropped."""
    ack.pending += 1
    try:
        dlq.send(m, error, ack)
    except (KafkaException, BufferError) as exc:
        ack.pending -= 1
        ack.fail_locally(dlq.topic_for(str(m.topic())), exc)
