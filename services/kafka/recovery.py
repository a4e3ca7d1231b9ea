"""The batch loop after an output was not delivered: back off, then read again.

A dead-letter topic missing or not writable, a results topic refused, a fenced transactional
producer: the loop never crashes and never skips the batch. It commits what finished before
the failure, seeks every partition back to its first unfinished offset (nothing at or past it
is committed), waits a backoff that doubles up to ``RETRY_CAP_S``, and reads again. Health
stays red with the reason (``BatchLoop.retrying``) until a batch is delivered again.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException, TopicPartition

from streamsense.services.kafka.delivery import ExactlyOnce
from streamsense.services.kafka.dlq import DeadLetterRouter
from streamsense.services.kafka.offsets import TopicPartitionKey

if TYPE_CHECKING:
    from streamsense.services.kafka.consumer import BatchLoop

log = logging.getLogger("streamsense.services.kafka.consumer")  # the batch loop's log
Points = dict[TopicPartitionKey, int]  # where to read again, per partition

#: Backoff between attempts to re-process a batch whose outputs were not delivered.
RETRY_FIRST_S, RETRY_CAP_S = 0.5, 30.0


def recover(loop: BatchLoop[Any]) -> None:
    """Settle what is in flight, commit what finished before the failure, then read again
    from the first unfinished offset of each partition, after a backoff."""
    reason, loop._failure = loop._failure, None
    loop.retrying = reason
    loop._pending = None  # prepared but not processed: read again below
    if isinstance(loop.delivery, ExactlyOnce) and loop.delivery.needs_new_producer:
        replace_producer(loop)
    points = rewind(loop)
    loop._attempts += 1
    delay = min(RETRY_CAP_S, RETRY_FIRST_S * 2 ** (loop._attempts - 1))
    rewound = ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(points.items()))
    log.error("%s: %s; nothing past it is committed; reading again from %s in %.1f s",
              loop.service, reason, rewound or "the committed offsets", delay)  # fmt: skip
    loop._stop.wait(delay)
    loop.last_poll = time.monotonic()


def rewind(loop: BatchLoop[Any], override: Points | None = None) -> Points:
    """Forget what is in flight and read again from the first unfinished offset of each
    partition (or from ``override`` where given)."""
    points = {**loop.delivery.rewind(), **(override or {})}
    loop.delivery.succeeded = False
    loop._unreadable.forget()
    for (topic, part), offset in points.items():
        try:
            loop._consumer.seek(TopicPartition(topic, part, offset))
        except KafkaException as exc:  # revoked meanwhile: its new owner re-reads it
            log.debug("seek %s[%d]: %s", topic, part, exc)
    return points


def replace_producer(loop: BatchLoop[Any]) -> None:
    """A fenced or broken transactional producer cannot go on: start a new one."""
    log.warning("%s: replacing the transactional producer", loop.service)
    old, loop.producer = loop.producer, loop._new_producer()
    old.close(0)
    loop._dlq = DeadLetterRouter(loop.producer, loop.service, loop.settings.topic_prefix)
    loop.delivery = loop._new_delivery()
    loop.delivery.start(loop._stop, loop._summary.maybe_log)
