"""Camera frames: JPEG bytes as the Kafka value, metadata as typed Kafka headers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.fields import SourceId, TraceId

HeaderList = Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None]

#: Prefix of every frame header, so frame metadata never collides with tracing headers.
HEADER_PREFIX = "ss-"


class FrameHeaders(BaseModel):
    """Metadata of one camera frame, carried in Kafka headers (the value is the encoded image)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    SCHEMA: ClassVar[str] = "streamsense.frame"
    VERSION: ClassVar[int] = 1

    camera_id: SourceId
    seq: int = Field(ge=0, description="monotonic per camera, from 0")
    capture_ns: int = Field(ge=0, description="capture time, ns since the Unix epoch")
    width: int = Field(gt=0, le=16384)
    height: int = Field(gt=0, le=16384)
    encoding: Literal["jpeg", "png"] = "jpeg"
    trace_id: TraceId

    def to_kafka_headers(self) -> list[tuple[str, bytes]]:
        """Headers for ``Producer.produce``; schema and version first."""
        fields = {"schema": self.SCHEMA, "version": str(self.VERSION)}
        fields.update({k: str(v) for k, v in self.model_dump().items()})
        return [(HEADER_PREFIX + k, v.encode()) for k, v in fields.items()]

    @classmethod
    def from_kafka_headers(cls, headers: HeaderList | None) -> FrameHeaders:
        """Parse and validate frame headers; any problem raises :class:`SchemaError`."""
        values: dict[str, str] = {}
        pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
        for key, raw in pairs:
            if not key.startswith(HEADER_PREFIX):
                continue
            if raw is None:
                msg = f"frame header {key!r} has no value"
                raise SchemaError(msg)
            if key[len(HEADER_PREFIX) :] in values:  # which one counts depends on the reader
                msg = f"frame header {key!r} appears more than once"
                raise SchemaError(msg)
            try:
                values[key[len(HEADER_PREFIX) :]] = (
                    raw.decode("utf-8") if isinstance(raw, bytes) else raw
                )
            except UnicodeDecodeError as exc:
                msg = f"frame header {key!r} is not UTF-8"
                raise SchemaError(msg) from exc
        schema = values.pop("schema", None)
        version = values.pop("version", None)
        if schema != cls.SCHEMA:
            msg = f"expected frame schema {cls.SCHEMA!r}, got {schema!r}"
            raise SchemaError(msg)
        if version != str(cls.VERSION):
            msg = f"frame schema version {version!r} is not supported (expected {cls.VERSION})"
            raise SchemaError(msg)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            msg = f"invalid frame headers: {_first_error(exc)}"
            raise SchemaError(msg) from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "<root>"
    return f"{loc}: {err['msg']} ({exc.error_count()} error(s))"
