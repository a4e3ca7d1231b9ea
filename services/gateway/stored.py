"""Values the API reads back from Redis, checked before use.

The sink stores only results that passed the contracts, but Redis is shared storage: an older
or foreign writer may have left anything under our keys (a stream entry without its ``json``
field, a result that is not a JSON object, ``written_ms`` that is not a number, a lag that is
not a count). Such a value is skipped where a route lists many (results pages, stats, models
in service) and refused with a 502 that names it where a route answers one (the latest
result), never a 500 for the whole route. Each is counted, and logged once per key and
reason so a poll every few seconds does not flood the log.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import HTTPException, status
from prometheus_client import Counter

from streamsense.services.serving.keys import JSON_FIELD

log = logging.getLogger(__name__)

MALFORMED = Counter(
    "streamsense_gateway_stored_malformed",
    "Values read from Redis that are not what the sink writes (skipped or refused)",
)
#: Distinct (key, reason) pairs remembered so each is logged once; then the memory is cleared.
_REMEMBER = 10_000
_reported: set[tuple[str, str]] = set()
_JSON = JSON_FIELD.encode()


def malformed(key: str, why: str) -> None:
    """Count a value that is not what the sink writes; log it the first time."""
    MALFORMED.inc()
    seen = (key[:300], why)
    if seen in _reported:
        return
    if len(_reported) >= _REMEMBER:
        _reported.clear()
    _reported.add(seen)
    log.warning(
        "%s in Redis: %s; skipped. The sink writes only valid results: an older or foreign "
        "writer left it (the sink replaces it with the source's next result)",
        key[:300],
        why,
    )


def result_doc(key: str, fields: Any) -> dict[str, Any] | None:
    """The result object in a stream entry's or latest hash's fields; None (noted) when there
    is none or it is not a JSON object."""
    raw = fields.get(_JSON) if isinstance(fields, dict) else None
    if raw is None:
        malformed(key, f"no {JSON_FIELD!r} field")
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        malformed(key, "the result is not valid JSON")
        return None
    if not isinstance(doc, dict):
        malformed(key, f"the result is a JSON {type(doc).__name__}, not an object")
        return None
    return doc


def count(raw: Any) -> int | None:
    """A non-negative integer stored as text, None for anything else."""
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else None


def refuse(what: str) -> HTTPException:
    """The 502 of a route whose one stored value is unusable (noted by :func:`result_doc`)."""
    return HTTPException(
        status.HTTP_502_BAD_GATEWAY,
        f"the stored {what} is not a valid result (an older or foreign writer left it in "
        "Redis); the sink replaces it with the next result",
    )
