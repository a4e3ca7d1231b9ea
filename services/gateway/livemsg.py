"""What the live fan-out forwards: a result as the sink publishes it, nothing else.

The sink publishes each result's contract JSON (validated when it was consumed) on
``<prefix>:live:<task>:<source>`` (:class:`~streamsense.services.serving.writes.LayoutWriter`).
Redis pub/sub is shared, though: anyone who can publish there reached every browser with
whatever they sent, framed as a result (text that is not JSON made the frame itself invalid
JSON). A message is forwarded only when it is at most ``MAX_BYTES`` long and a JSON object
(UTF-8) that names the result contract of its channel's task (``schema`` and ``version``) and
its channel's source (``source_id``); anything else is dropped, counted in
``streamsense_gateway_live_invalid_total{reason}`` and logged (once a minute per reason), and
the subscriber and the sockets go on.

The fields below the envelope are not validated again here (the sink did, and a full pydantic
validation costs 15-55 us a result on the one subscriber against 2-8 us for the parse); the
dashboard checks what it draws (``static/guard.js``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import orjson
from prometheus_client import Counter

from streamsense.schemas.catalog import FRAME_MAX_BYTES, TASKS

log = logging.getLogger(__name__)

INVALID = Counter(
    "streamsense_gateway_live_invalid",
    "Messages on the live result channels not forwarded to WebSocket clients, by reason",
    ["reason"],
)
#: Every reason :func:`check` gives (the metric's label values: a fixed set).
REASONS: Final = (
    "bad_channel",
    "unknown_task",
    "too_large",
    "not_json",
    "not_object",
    "wrong_schema",
    "wrong_source",
)
for _reason in REASONS:
    INVALID.labels(_reason)  # exported at 0 from the start, so a rate over it works at once

#: The result contract of each task: (schema name, version).
_CONTRACTS: dict[str, tuple[str, int]] = {
    str(task): (spec.result_schema.SCHEMA, spec.result_schema.VERSION)
    for task, spec in TASKS.items()
}
#: The largest record our producers send (librdkafka's ``message.max.bytes``): a result the
#: sink published is never larger, and a larger message is not even parsed.
MAX_BYTES = FRAME_MAX_BYTES
LOG_EVERY_S = 60.0
_logged: dict[str, float] = {}


def check(task: str, source: str, data: bytes | str) -> tuple[str | None, str]:
    """``(text to forward, "")``, or ``(None, reason)`` for a message that is not a result of
    ``task`` from ``source``."""
    contract = _CONTRACTS.get(task)
    if contract is None:
        return None, "unknown_task"
    if len(data) > MAX_BYTES:
        return None, "too_large"
    try:
        doc: Any = orjson.loads(data)
    except orjson.JSONDecodeError:  # invalid UTF-8 and lone surrogates included
        return None, "not_json"
    if not isinstance(doc, dict):
        return None, "not_object"
    if (doc.get("schema"), doc.get("version")) != contract:
        return None, "wrong_schema"
    if doc.get("source_id") != source:
        return None, "wrong_source"
    return (data.decode() if isinstance(data, bytes) else data), ""


def dropped(channel: str, reason: str, clock: float | None = None) -> None:
    """Count a message that was not forwarded; log it when its reason was not logged lately."""
    INVALID.labels(reason).inc()
    now = time.monotonic() if clock is None else clock
    if now - _logged.get(reason, -LOG_EVERY_S) < LOG_EVERY_S:
        return
    _logged[reason] = now
    log.warning(
        "live: a message on %s was not forwarded (%s): only results as the sink publishes them "
        "go to clients; something else publishes on the live channels (counted in "
        "streamsense_gateway_live_invalid_total; logged once a minute per reason)",
        channel[:300],
        reason.replace("_", " "),
    )
