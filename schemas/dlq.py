"""Dead-letter records: the original key and bytes, the reason in headers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

HEADER_PREFIX = "dlq-"
#: Longest reason kept in ``dlq-error-message``.
MAX_MESSAGE_CHARS = 4096


class DeadLetterInfo(BaseModel):
    """Why a message was dead-lettered and where it came from (Kafka headers on ``<topic>.dlq``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    SCHEMA: ClassVar[str] = "streamsense.dlq"
    VERSION: ClassVar[int] = 1

    error_class: str
    error_message: str = Field(max_length=MAX_MESSAGE_CHARS)
    original_topic: str
    original_partition: int
    original_offset: int
    service: str
    #: Set only when the original record did not fit its dead-letter topic: the value was cut to
    #: a prefix (``payload_truncated``), its full size and sha256 are kept here, and original
    #: headers that did not fit are counted in ``headers_dropped`` (the key is cut to 4 KiB).
    payload_truncated: bool = False
    original_size: int | None = Field(default=None, ge=0)
    original_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    original_key_size: int | None = Field(default=None, ge=0)
    headers_dropped: int = Field(default=0, ge=0)
    #: Set when the original record's headers could not be read (a header key that is not
    #: UTF-8): none of them is copied to the dead letter.
    headers_unreadable: bool = False

    @classmethod
    def describe(
        cls, error: BaseException, *, topic: str, partition: int, offset: int, service: str
    ) -> DeadLetterInfo:
        """Why ``error`` made the record at ``topic[partition]@offset`` a dead letter."""
        return cls(
            error_class=type(error).__name__,
            error_message=(str(error) or repr(error))[:MAX_MESSAGE_CHARS],
            original_topic=topic,
            original_partition=partition,
            original_offset=offset,
            service=service,
        )

    def to_kafka_headers(self) -> list[tuple[str, bytes]]:
        """``dlq-error-class`` etc.; the truncation fields only when something was cut."""
        return [
            (HEADER_PREFIX + k.replace("_", "-"), _header_value(v))
            for k, v in self.model_dump(exclude_defaults=True).items()
        ]

    @classmethod
    def from_kafka_headers(
        cls, headers: Sequence[tuple[str, bytes | None]] | None
    ) -> DeadLetterInfo:
        values = {
            k[len(HEADER_PREFIX) :].replace("-", "_"): (v or b"").decode("utf-8", "replace")
            for k, v in headers or ()
            if k.startswith(HEADER_PREFIX)
        }
        return cls.model_validate(values)


def _header_value(value: object) -> bytes:
    return (str(value).lower() if isinstance(value, bool) else str(value)).encode()
