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
from streamsense.schemas.catalog import TASKS, Task
from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import decode
from streamsense.schemas.text import TextEvent
from streamsense.services.workers.frames import CheckedFrame, check_frame, decode_checked


@dataclass(slots=True)
class Item:
    """One input message: checked (``meta``), then decoded (``value``), or refused (``error``),
    or skipped (``skip``: ``stale`` past the age limit, ``behind`` for a newer frame)."""

    msg: Message
    consumed_ns: int
    meta: FrameHeaders | TextEvent | None = None
    checked: CheckedFrame | None = None
    value: Any = None
    error: BaseException | None = None
    skip: str | None = None
    decode_ms: float = 0.0

    @property
    def ready(self) -> bool:
        """Valid and not skipped: the model sees it."""
        return self.error is None and self.skip is None


def source_ref(msg: Message, seq: int | None) -> dict[str, Any]:
    return {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(), "seq": seq}


def envelope(  # noqa: PLR0913 - every field of the result envelope
    task: Task,
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
        "schema": TASKS[task].result_schema.SCHEMA,
        "version": TASKS[task].result_schema.VERSION,
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

    def __init__(self, task: Task, max_bytes: int, max_pixels: int, max_age_ms: int) -> None:
        self.task = task
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_age_ns = max_age_ms * 1_000_000
        self.need_side: int | None = None  # set from the model's input size

    def check(self, item: Item) -> None:
        """Validate every frame (a poison frame is a dead letter whatever its age) and mark
        the stale ones; cheap: headers and the JPEG's frame header, no pixels."""
        try:
            frame = check_frame(item.msg, max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        except Exception as exc:  # every reason becomes a dead letter
            item.error = exc
            return
        item.meta, item.checked = frame.headers, frame
        if self.max_age_ns and item.consumed_ns - frame.headers.capture_ns > self.max_age_ns:
            item.skip = "stale"

    def decode(self, item: Item) -> None:
        """Decode a checked frame the model will see."""
        assert item.checked is not None
        start = time.perf_counter()
        try:
            item.value = decode_checked(item.checked, self.need_side)
        except Exception as exc:  # a frame the codec refuses is a dead letter
            item.error = exc
            return
        finally:
            item.checked = None  # the bytes are not needed any more
        item.decode_ms = (time.perf_counter() - start) * 1000

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
            body["detections"] = [d.to_dict(h.width, h.height) for d in out]
        else:
            assert isinstance(out, SegmentationOutput)
            body["mask"] = {"size": list(out.mask.size), "counts": out.mask.counts}
            body["class_areas"] = out.class_areas
        return orjson.dumps(body)


class TextCodec:
    """TextEvent JSON -> text; sentiment -> result JSON."""

    task: Task = "sentiment"

    def check(self, item: Item) -> None:
        try:
            ev = decode(item.msg.value(), TextEvent)
        except Exception as exc:
            item.error = exc
            return
        item.meta, item.value = ev, ev.text

    def decode(self, item: Item) -> None:
        """Nothing left to do: :meth:`check` parsed the event."""

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
