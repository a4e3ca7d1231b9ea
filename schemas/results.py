"""Inference results written to ``results.*`` topics."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from streamsense.schemas.base import Message
from streamsense.schemas.fields import Label, ModelName, SourceId, TopicName, TraceId, VersionTag


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelRef(_Part):
    name: ModelName
    version: VersionTag


class SourceRef(_Part):
    """Where the input came from; duplicates after a redelivery share the same reference."""

    topic: TopicName
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    seq: int | None = Field(default=None, ge=0)


class Timings(_Part):
    capture_ns: int | None = Field(default=None, description="when the input was captured")
    consumed_ns: int = Field(description="when the worker received the input")
    produced_ns: int = Field(description="when the result was handed to Kafka")
    decode_ms: float = Field(default=0.0, ge=0)
    model_ms: float = Field(ge=0, description="model time of the batch")
    batch_size: int = Field(ge=1)


class Box(_Part):
    x1: float
    y1: float
    x2: float
    y2: float


class Detection(_Part):
    label: Label
    class_id: int
    score: float = Field(ge=0, le=1)
    box: Box = Field(description="normalized xyxy in [0, 1]")
    box_px: Box = Field(description="pixel xyxy in the source image")


class _Result(Message):
    source_id: SourceId
    model: ModelRef
    source: SourceRef
    timings: Timings
    trace_id: TraceId | None = None


class DetectionResult(_Result):
    SCHEMA = "streamsense.result.detection"
    VERSION = 1

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    detections: list[Detection]


#: Largest side of a mask (that of a frame): a reader allocates height x width pixels for it.
MAX_MASK_SIDE = 16384
MaskSide = Annotated[int, Field(gt=0, le=MAX_MASK_SIDE)]


class RleMask(_Part):
    """COCO run-length encoding (``pycocotools.mask.encode``), counts as a string."""

    size: tuple[MaskSide, MaskSide] = Field(description="[height, width]")
    counts: str = Field(
        pattern=r"^[0-o]*$", description="COCO's compressed counts: characters '0' to 'o'"
    )


class SegmentResult(_Result):
    SCHEMA = "streamsense.result.segment"
    VERSION = 1

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    mask: RleMask
    class_areas: dict[Label, float] = Field(description="fraction of the image per class")


class SentimentResult(_Result):
    SCHEMA = "streamsense.result.sentiment"
    VERSION = 1

    label: Label
    probs: dict[Label, float]
    text: str = Field(max_length=65536)
