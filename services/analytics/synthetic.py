"""Synthetic results with chosen sources, times and contents (benchmark and tests)."""

from __future__ import annotations

from collections.abc import Mapping

from streamsense.schemas.results import (
    Box,
    Detection,
    DetectionResult,
    ModelRef,
    RleMask,
    SegmentResult,
    SentimentResult,
    SourceRef,
    Timings,
)

_BOX = Box(x1=0.1, y1=0.1, x2=0.2, y2=0.3)
_BOX_PX = Box(x1=64.0, y1=36.0, x2=128.0, y2=108.0)


def _timings(ts_ns: int) -> Timings:
    return Timings(
        capture_ns=ts_ns, consumed_ns=ts_ns, produced_ns=ts_ns, model_ms=1.0, batch_size=1
    )


def detection(
    source_id: str,
    ts_ns: int,
    labels: Mapping[str, int],
    *,
    score: float = 0.9,
    seq: int = 0,
) -> DetectionResult:
    """A detection result with ``labels[label]`` detections of each label at ``score``."""
    dets = [
        Detection(label=label, class_id=i, score=score, box=_BOX, box_px=_BOX_PX)
        for i, (label, n) in enumerate(sorted(labels.items()))
        for _ in range(n)
    ]
    return DetectionResult(
        source_id=source_id,
        model=ModelRef(name="synthetic-detector", version="1"),
        source=SourceRef(topic="frames", partition=0, offset=seq, seq=seq),
        timings=_timings(ts_ns),
        width=640,
        height=360,
        detections=dets,
    )


def segment(source_id: str, ts_ns: int, person_area: float, *, seq: int = 0) -> SegmentResult:
    return SegmentResult(
        source_id=source_id,
        model=ModelRef(name="synthetic-segmenter", version="1"),
        source=SourceRef(topic="frames", partition=0, offset=seq, seq=seq),
        timings=_timings(ts_ns),
        width=640,
        height=360,
        mask=RleMask(size=(360, 640), counts="0"),
        class_areas={"person": person_area, "background": 1.0 - person_area},
    )


def sentiment(source_id: str, ts_ns: int, label: str, *, seq: int = 0) -> SentimentResult:
    labels = ("negative", "neutral", "positive")
    probs = {name: (0.8 if name == label else 0.1) for name in labels}
    return SentimentResult(
        source_id=source_id,
        model=ModelRef(name="synthetic-sentiment", version="1"),
        source=SourceRef(topic="text", partition=0, offset=seq, seq=seq),
        timings=_timings(ts_ns),
        label=label,
        probs=probs,
        text=f"synthetic {label} message {seq}",
    )
