"""Errors of the producers."""

from __future__ import annotations

from streamsense.services.exceptions import ConfigError, ServiceError


class ProducerError(ServiceError):
    """A producer cannot start or continue."""


class SourceError(ProducerError):
    """A source cannot be opened or read: missing file, bad URL or device, empty folder."""


class SourceLostError(SourceError):
    """A live source stopped delivering and did not come back within the reconnect attempts."""


class CheckpointError(ProducerError):
    """The text producer's checkpoint cannot be read (invalid: the message names the entry) or
    written (a read-only place, a full disk)."""


class FrameTooLargeError(ProducerError):
    """A frame does not fit in a frame record even at the lowest JPEG quality tried."""


class TopicMissingError(ProducerError):
    """The target topic does not exist on the broker."""


class LineError(ProducerError):
    """A text line cannot become a ``TextEvent``; it goes to ``<topic>.dlq`` with this reason."""


class NotJsonError(LineError):
    """``--json-field`` is set and the line is not a JSON object."""


class MissingFieldError(LineError):
    """``--json-field`` is set and the JSON object lacks the field, or it is not a string."""


class KafkaUnavailableError(ProducerError):
    """Kafka did not answer, or acknowledged nothing, within the producer's Kafka timeout."""


class FleetConfigError(ConfigError):
    """The fleet file of ``produce cameras`` is unreadable or invalid (the message names the
    camera and the field)."""
