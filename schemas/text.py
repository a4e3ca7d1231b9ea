"""Text events (log lines, reviews, chat) and labeled feedback for online learning."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamsense.schemas.base import Message
from streamsense.schemas.fields import Label, ModelName, SourceId, TraceId

SentimentLabel = Literal["negative", "neutral", "positive"]


class TextEvent(Message):
    """One line of text from a source (a log file, stdin, an API)."""

    SCHEMA = "streamsense.text"
    VERSION = 1

    source_id: SourceId
    text: str = Field(max_length=65536)
    ts_ns: int = Field(ge=0, description="time the line was read, ns since the Unix epoch")
    seq: int = Field(ge=0, description="monotonic per source")
    trace_id: TraceId
    path: str | None = Field(
        default=None, max_length=4096, description="file the line came from, if any"
    )
    position: int | None = Field(default=None, ge=0, description="byte offset of the line")
    flags: list[Label] = Field(
        default_factory=list,
        max_length=16,
        description="quality flags, e.g. 'invalid-utf8-replaced', 'truncated'",
    )


class LabeledText(Message):
    """A labeled example on ``labels.text``: feedback for the online learner."""

    SCHEMA = "streamsense.labeled_text"
    VERSION = 1

    source_id: SourceId
    text: str = Field(min_length=1, max_length=65536)
    label: Label
    model: ModelName = "sentiment"
    ts_ns: int = Field(ge=0)
