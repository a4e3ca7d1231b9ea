"""``POST /api/feedback``: a labeled example onto ``labels.text`` for the online learner, the
same record and path as ``streamsense feedback`` (:mod:`streamsense.services.kafka.feedback`).

The body is read with a size cap before it is parsed, must be JSON (``Content-Type:
application/json``, which a cross-site page cannot send without a CORS preflight that is
refused), and the request must come from this origin. The Kafka producer is made on the first
call, so a gateway that never receives feedback never connects to Kafka.

Every example is sent as ``STREAMSENSE_GATEWAY_FEEDBACK_SOURCE`` (``gateway``). The gateway
cannot tell its callers apart (one token, or none on loopback), so a caller naming another
``source_id`` is refused (403): otherwise anyone who may post feedback could speak as a source
the learner trusts (``STREAMSENSE_LEARNER_SOURCES``) or spread a flood over invented sources
past ``STREAMSENSE_LEARNER_SOURCE_MAX_SHARE``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from streamsense.schemas.fields import Label, ModelName, SourceId
from streamsense.schemas.text import LabeledText
from streamsense.services.gateway.api import ErrorBody
from streamsense.services.gateway.errors import Unavailable
from streamsense.services.kafka.exceptions import KafkaIOError
from streamsense.services.kafka.feedback import make_feedback, send_feedback
from streamsense.services.kafka.producer import Producer

#: A labeled text is at most 64 KiB of text plus a few short fields.
MAX_BODY = 80_000

router = APIRouter(prefix="/api", tags=["feedback"])


class Feedback(BaseModel):
    text: str = Field(min_length=1, max_length=65536)
    label: Label
    source_id: SourceId | None = Field(
        default=None, description="may only repeat STREAMSENSE_GATEWAY_FEEDBACK_SOURCE"
    )
    model: ModelName = "sentiment"


class Accepted(BaseModel):
    topic: str = Field(description="where the labeled example was written (acknowledged)")


class Producers:
    """The gateway's one Kafka producer, made when first needed."""

    def __init__(self) -> None:
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def get(self, settings: Any) -> Producer:
        with self._lock:
            if self._producer is None:
                self._producer = Producer(settings)
            return self._producer

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(2)  # a caller without an ack was told so (503)
                self._producer = None


async def _body(request: Request) -> Feedback:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send application/json")
    data = bytearray()
    # A body sent a byte now and then would hold the connection for ever (slow POST).
    deadline = request.app.state.settings.gateway_header_timeout_s
    try:
        async with asyncio.timeout(deadline):
            async for chunk in request.stream():
                data += chunk
                if len(data) > MAX_BODY:
                    raise HTTPException(
                        status.HTTP_413_CONTENT_TOO_LARGE, f"body larger than {MAX_BODY} bytes"
                    )
    except TimeoutError:
        raise HTTPException(
            status.HTTP_408_REQUEST_TIMEOUT,
            f"body not complete within {deadline:g} s",
            headers={"Connection": "close"},
        ) from None
    try:
        return Feedback.model_validate_json(bytes(data))
    except ValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            exc.errors(include_url=False, include_context=False, include_input=False),
        ) from exc


@router.post(
    "/feedback",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        403: {
            "model": ErrorBody,
            "description": "a cross-origin request, or a source_id other than "
            "STREAMSENSE_GATEWAY_FEEDBACK_SOURCE",
        },
        408: {"description": "body not complete within STREAMSENSE_GATEWAY_HEADER_TIMEOUT_S"},
        413: {"description": "body too large"},
        415: {"description": "not JSON"},
        422: {"description": "a field is missing or out of bounds"},
        503: {"model": Unavailable, "description": "Kafka did not acknowledge it"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Feedback.model_json_schema()}},
        }
    },
)
async def feedback(request: Request) -> Any:
    """Send one labeled example to the learner; answers once Kafka acknowledged it."""
    body = await _body(request)
    settings = request.app.state.settings
    source = settings.gateway_feedback_source
    if body.source_id is not None and body.source_id != source:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this gateway sends feedback as source {source!r}; a caller cannot name another "
            "(the operator sets it: STREAMSENSE_GATEWAY_FEEDBACK_SOURCE)",
        )
    example: LabeledText = make_feedback(body.text, body.label, source, body.model)
    producers: Producers = request.app.state.producers
    try:
        topic = await asyncio.to_thread(
            send_feedback,
            producers.get(settings),
            settings,
            example,
            settings.gateway_feedback_timeout_s,
        )
    except KafkaIOError as exc:
        return JSONResponse(
            {"error": f"kafka unavailable: {exc}"}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE
        )
    return Accepted(topic=topic)
