"""One serialization path: JSON messages keyed by (schema name, version)."""

from __future__ import annotations

from typing import Any, TypeVar, cast

import orjson
from pydantic import ValidationError

from streamsense.schemas.analytics import Alert, WindowStat
from streamsense.schemas.base import Message
from streamsense.schemas.cameras import CameraStatus
from streamsense.schemas.exceptions import SchemaError, UnknownSchemaError
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.schemas.text import LabeledText, TextEvent

M = TypeVar("M", bound=Message)

#: Every JSON message type, by (schema, version).
REGISTRY: dict[tuple[str, int], type[Message]] = {
    (cls.SCHEMA, cls.VERSION): cls
    for cls in (
        TextEvent,
        LabeledText,
        DetectionResult,
        SegmentResult,
        SentimentResult,
        ModelVersion,
        WindowStat,
        Alert,
        CameraStatus,
    )
}


def encode(message: Message) -> bytes:
    """Serialize a message to its JSON wire form."""
    return orjson.dumps(message.to_json_dict())


def decode(data: bytes | str | None, expected: type[M] | None = None) -> M:
    """Parse JSON bytes into the registered model; every failure is a :class:`SchemaError`.

    With ``expected`` the message must be of that type (a wrong schema is an error).
    """
    return _validate(_parse(data), expected)


def decode_wire(data: bytes | str | None, expected: type[M] | None = None) -> tuple[M, bytes]:
    """:func:`decode`, and the JSON of exactly what was validated, for a reader that stores or
    forwards the message: JSON allows a key twice, and parsers disagree on which value counts
    (ours keeps the last), so ``{"source_id": "a", ..., "source_id": "b"}`` validated as ``b``
    must not reach a reader that keeps the first as ``a``. Re-encoding the parsed object costs
    a few microseconds per result."""
    raw = _parse(data)
    return _validate(raw, expected), orjson.dumps(raw)


def _parse(data: bytes | str | None) -> dict[str, Any]:
    if data is None:
        msg = "message has no value"
        raise SchemaError(msg)
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        msg = f"not valid JSON/UTF-8: {exc}"
        raise SchemaError(msg) from exc
    if not isinstance(raw, dict):
        msg = f"expected a JSON object, got {type(raw).__name__}"
        raise SchemaError(msg)
    return raw


def _validate(raw: dict[str, Any], expected: type[M] | None) -> M:
    name, version = raw.get("schema"), raw.get("version")
    cls = (
        REGISTRY.get((name, version))
        if isinstance(name, str) and isinstance(version, int)
        else None
    )
    if cls is None:
        key = (name, version)
        msg = f"unknown schema/version {key[0]!r}/{key[1]!r}"
        raise UnknownSchemaError(msg)
    if expected is not None and cls is not expected:
        msg = f"expected {expected.SCHEMA!r}, got {cls.SCHEMA!r}"
        raise SchemaError(msg)
    try:
        return cast(M, cls.model_validate(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = f"invalid {cls.SCHEMA} v{cls.VERSION}: {loc}: {err['msg']}"
        raise SchemaError(msg) from exc
