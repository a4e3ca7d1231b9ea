"""The batch loop when partitions come and go: assigned, revoked, lost, and at shutdown.

- Assigned: the handler may keep its own positions (the sink's in Redis); the partitions then
  start there, not at the group's committed offsets.
- Revoked (and at shutdown): the prepared batch is finished and every output and its offsets
  made durable before the partitions are handed over, so the new owner starts where this one
  stopped. After an output that was not delivered, nothing at or past it is committed: the
  new owner reads again from there.
- Lost (exactly-once): the open transaction cannot be committed any more; it is aborted and
  the loop reads again (:mod:`~streamsense.services.kafka.recovery`). At-least-once treats a
  loss as a revoke: the commit may fail, and the new owner re-reads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streamsense.services.kafka.exceptions import HandlerUnavailableError

if TYPE_CHECKING:
    from streamsense.services.kafka.consumer import BatchLoop

log = logging.getLogger("streamsense.services.kafka.consumer")  # the batch loop's log


def drain(loop: BatchLoop[Any]) -> None:
    """Finish the prepared batch, make every output and its offsets durable."""
    if loop._pending is not None and loop._failure is None:
        pending, loop._pending = loop._pending, None
        try:
            loop._run_batch(*pending)
        except HandlerUnavailableError as exc:  # its batch stays uncommitted
            loop._on_failure(str(exc))
    if loop._failure is None:
        loop.delivery.drain()


def on_assign(loop: BatchLoop[Any], c: Consumer, parts: list[TopicPartition]) -> None:
    loop.assignment = sorted({*loop.assignment, *((p.topic, p.partition) for p in parts)})
    loop.watchdog.assigned(loop.assignment)
    log.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in parts])

    def committed() -> dict[tuple[str, int], int]:
        try:
            got = c.committed([TopicPartition(p.topic, p.partition) for p in parts], timeout=10)
        except KafkaException as exc:
            log.warning("the group's committed offsets are unknown: %s", exc)
            return {}
        return {(p.topic, p.partition): p.offset for p in got if p.error is None}

    starts = loop.handler.start_positions([(p.topic, p.partition) for p in parts], committed)
    if starts:  # the handler keeps its own positions: start there, not at the group's
        for p in parts:
            p.offset = starts.get((p.topic, p.partition), p.offset)
        loop._consumer.incremental_assign(parts)


def on_revoke(loop: BatchLoop[Any], _c: Consumer, parts: list[TopicPartition]) -> None:
    log.info("revoking %s: draining and committing", [f"{p.topic}[{p.partition}]" for p in parts])
    drain(loop)
    gone = [(p.topic, p.partition) for p in parts]
    loop._tracker.forget(gone)
    loop._unreadable.forget(gone)
    loop.assignment = [tp for tp in loop.assignment if tp not in gone]


def on_lost(loop: BatchLoop[Any], c: Consumer, parts: list[TopicPartition]) -> None:
    log.warning("partitions lost: %s", [f"{p.topic}[{p.partition}]" for p in parts])
    if loop.exactly_once:  # the open round cannot be committed any more: read it again
        loop.delivery.lost()
        loop._on_failure("partitions lost: the open transaction was aborted")
        gone = [(p.topic, p.partition) for p in parts]
        loop.assignment = [tp for tp in loop.assignment if tp not in gone]
        return
    # at-least-once: as a revoke; the commit may fail, and the new owner re-reads
    on_revoke(loop, c, parts)


def shutdown(loop: BatchLoop[Any]) -> None:
    try:
        drain(loop)
    finally:
        loop._consumer.close()
        loop._pool.shutdown(wait=True)
        loop.handler.close()
        loop.producer.close(0)  # drain flushed it; a loop owns the producer it was given
        log.info("%s stopped after %d messages", loop.service, loop.processed)
