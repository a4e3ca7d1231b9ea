"""Errors of the Kafka I/O core."""

from __future__ import annotations

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


class TopicMismatchError(KafkaIOError):
    """A topic a service writes is missing or configured unlike the topic spec (a broker's
    auto-creation, an old spec): ``streamsense topics create`` aligns it."""
