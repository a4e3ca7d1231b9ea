"""Errors of the Kafka I/O core."""

from __future__ import annotations

from streamsense.schemas.exceptions import SchemaError
from streamsense.services.exceptions import ServiceError


class KafkaIOError(ServiceError):
    """Kafka refused or lost something the core cannot recover from by itself."""


class DeliveryFailedError(KafkaIOError):
    """A produced record was finally refused after librdkafka's retries: its source offset is
    never committed, so the source message is re-read after a restart (at-least-once)."""


class RewindRequest(Exception):  # noqa: N818 - a request, not an error
    """Raised by a handler's ``process`` to have the loop read partitions again from the given
    offsets (e.g. the sink found its store behind what it wrote): the batch is dropped, nothing
    of it is committed, the loop seeks and goes on."""

    def __init__(self, points: dict[tuple[str, int], int]) -> None:
        super().__init__(points)
        self.points = points


class FatalHandlerError(ServiceError):
    """Raised by a handler to stop the loop without dead-lettering (e.g. a broken model store).

    The loop drains, commits what was fully processed, and re-raises."""


class KafkaUnreachableError(KafkaIOError):
    """No broker answered within the call's timeout (a wrong bootstrap address, a broker not
    up yet): a service may wait and try again, a one-shot command says so and exits."""


class TopicMismatchError(KafkaIOError):
    """A topic a service writes is missing or configured unlike the topic spec (a broker's
    auto-creation, an old spec): ``streamsense topics create`` aligns it."""


class UnreadableRecordError(KafkaIOError):
    """The consumer cannot read a record (its batch fails to decompress, e.g. past
    ``receive.message.max.bytes``, or it is corrupt): it is dead-lettered without its payload
    and the partition reads on past it (:mod:`~streamsense.services.kafka.unreadable`)."""


class HandlerUnavailableError(ServiceError):
    """Raised by a handler's ``process`` when it cannot serve any message right now (e.g. the
    model fails on a known-good input too): the batch is not the culprit, so nothing of it is
    dead-lettered or committed; health is red with this reason and the loop reads the batch
    again after a backoff."""


#: What a handler raises for the loop to act on: never a dead letter, never retried one by one.
LOOP_SIGNALS = (FatalHandlerError, RewindRequest, HandlerUnavailableError)


class OutputTooLargeError(KafkaIOError):
    """An output record larger than its topic accepts: the broker would refuse it on every
    retry and its partition would stall behind it, so its input is dead-lettered instead."""


class UnreadableHeadersError(SchemaError):
    """A record's headers cannot be read: a header key is not UTF-8. The wire format allows
    any bytes and any client can send them, but confluent-kafka decodes keys as UTF-8 and
    raises (:mod:`~streamsense.services.kafka.headers`)."""
