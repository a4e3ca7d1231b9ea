"""Per-task input decoding and result encoding for the inference workers.

Results are built as plain dicts and encoded with orjson: constructing pydantic models per
result would cost more than the sentiment model itself. ``tests/workers`` decodes every result
with :mod:`streamsense.schemas.registry`, so the wire form stays exactly the contract.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Message

from streamsense.models.base import SegmentationOutput, SentimentOutput
from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import decode
from streamsense.schemas.results import Detection, DetectionResult, SegmentResult, SentimentResult
from streamsense.schemas.text import TextEvent
from streamsense.services.workers.frames import decode_frame

RESULT_SCHEMAS = {
    "detect": DetectionResult.SCHEMA,
    "segment": SegmentResult.SCHEMA,
    "sentiment": SentimentResult.SCHEMA,
}


@dataclass(slots=True)
class Item:
    """One input message, decoded (``value``) or not (``error``), or skipped as stale."""

    msg: Message
    consumed_ns: int
    meta: FrameHeaders | TextEvent | None = None
    value: Any = None
    error: BaseException | None = None
    stale: bool = False
    decode_ms: float = 0.0


def source_ref(msg: Message, seq: int | None) -> dict[str, Any]:
    return {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(), "seq": seq}


def envelope(  # noqa: PLR0913 - every field of the result envelope
    task: str,
    item: Item,
    model: tuple[str, str],
    model_ms: float,
    batch: int,
    source_id: str,
    seq: int,
    capture_ns: int | None,
    trace_id: str,
) -> dict[str, Any]:
    return {
        "schema": RESULT_SCHEMAS[task],
        "version": 1,
        "source_id": source_id,
        "model": {"name": model[0], "version": model[1]},
        "source": source_ref(item.msg, seq),
        "timings": {
            "capture_ns": capture_ns,
            "consumed_ns": item.consumed_ns,
            "produced_ns": time.time_ns(),
            "decode_ms": round(item.decode_ms, 3),
            "model_ms": round(model_ms, 3),
            "batch_size": batch,
        },
        "trace_id": trace_id,
    }


class FrameCodec:
    """Frames -> RGB images; detections or masks -> result JSON."""

    def __init__(self, task: str, max_bytes: int, max_pixels: int, max_age_ms: int) -> None:
        self.task = task
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_age_ns = max_age_ms * 1_000_000
        self.need_side: int | None = None  # set from the model's input size

    def decode(self, item: Item) -> None:
        try:
            if self.max_age_ns:
                headers = FrameHeaders.from_kafka_headers(item.msg.headers())
                if item.consumed_ns - headers.capture_ns > self.max_age_ns:
                    item.meta, item.stale = headers, True
                    return
            frame = decode_frame(
                item.msg,
                max_bytes=self.max_bytes,
                max_pixels=self.max_pixels,
                need_side=self.need_side,
            )
        except Exception as exc:  # every reason becomes a dead letter
            item.error = exc
            return
        item.meta, item.value, item.decode_ms = frame.headers, frame.image, frame.decode_ms

    def encode(
        self, item: Item, out: Any, model: tuple[str, str], model_ms: float, batch: int
    ) -> bytes:
        h = item.meta
        assert isinstance(h, FrameHeaders)
        body = envelope(
            self.task, item, model, model_ms, batch, h.camera_id, h.seq, h.capture_ns, h.trace_id
        )
        body["width"], body["height"] = h.width, h.height
        if self.task == "detect":
            sx = h.width / item.value.shape[1]
            sy = h.height / item.value.shape[0]
            body["detections"] = [_detection(d, sx, sy) for d in out]
        else:
            assert isinstance(out, SegmentationOutput)
            body["mask"] = {"size": list(out.mask.size), "counts": out.mask.counts}
            body["class_areas"] = out.class_areas
        return orjson.dumps(body)


def _detection(d: Detection, sx: float, sy: float) -> dict[str, Any]:
    b, p = d.box, d.box_px
    return {
        "label": d.label,
        "class_id": d.class_id,
        "score": d.score,
        "box": {"x1": b.x1, "y1": b.y1, "x2": b.x2, "y2": b.y2},
        "box_px": {"x1": p.x1 * sx, "y1": p.y1 * sy, "x2": p.x2 * sx, "y2": p.y2 * sy},
    }


class TextCodec:
    """TextEvent JSON -> text; sentiment -> result JSON."""

    task = "sentiment"

    def decode(self, item: Item) -> None:
        try:
            ev = decode(item.msg.value(), TextEvent)
        except Exception as exc:
            item.error = exc
            return
        item.meta, item.value = ev, ev.text

    def encode(
        self, item: Item, out: Any, model: tuple[str, str], model_ms: float, batch: int
    ) -> bytes:
        ev = item.meta
        assert isinstance(ev, TextEvent)
        assert isinstance(out, SentimentOutput)
        body = envelope(
            "sentiment", item, model, model_ms, batch, ev.source_id, ev.seq, ev.ts_ns, ev.trace_id
        )
        body["label"], body["probs"], body["text"] = out.label, out.probs, ev.text
        return orjson.dumps(body)
