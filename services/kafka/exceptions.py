"""Errors of the Kafka I/O core."""

from __future__ import annotations

from streamsense.services.exceptions import ServiceError


class KafkaIOError(ServiceError):
    """Kafka refused or lost something the core cannot recover from by itself."""


class DeliveryFailedError(KafkaIOError):
    """A produced record was finally refused after librdkafka's retries: its source offset is
    never committed, so the source message is re-read after a restart (at-least-once)."""


class FatalHandlerError(ServiceError):
    """Raised by a handler to stop the loop without dead-lettering (e.g. a broken model store).

    The loop drains, commits what was fully processed, and re-raises."""


class TopicMismatchError(KafkaIOError):
    """A topic a service writes is missing or configured unlike the topic spec (a broker's
    auto-creation, an old spec): ``streamsense topics create`` aligns it."""
