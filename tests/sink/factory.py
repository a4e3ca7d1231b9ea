"""Real result messages and camera frames for the sink and gateway tests.

Results are built with the schemas (as workers build them), masks with pycocotools from a real
region, frames as real JPEGs of scikit-image's bundled photos.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from confluent_kafka.admin import AdminClient, NewTopic
from pycocotools import mask as mask_utils

from streamsense.schemas.catalog import Topic, results_topics
from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import encode
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
from streamsense.services.kafka.producer import Producer
from streamsense.services.sink.settings import SinkSettings


def _timings(capture_ns: int | None = None) -> Timings:
    now = time.time_ns()
    return Timings(
        capture_ns=capture_ns or now - 30_000_000,
        consumed_ns=now - 20_000_000,
        produced_ns=now,
        model_ms=4.0,
        batch_size=1,
    )


def detection(
    camera: str,
    seq: int,
    boxes: list[tuple[float, float, float, float]],
    width: int = 512,
    height: int = 512,
    label: str = "person",
) -> DetectionResult:
    """Boxes in normalized xyxy."""
    dets = [
        Detection(
            label=label,
            class_id=0,
            score=0.9 - 0.1 * i,
            box=Box(x1=x1, y1=y1, x2=x2, y2=y2),
            box_px=Box(x1=x1 * width, y1=y1 * height, x2=x2 * width, y2=y2 * height),
        )
        for i, (x1, y1, x2, y2) in enumerate(boxes)
    ]
    return DetectionResult(
        source_id=camera,
        model=ModelRef(name="centernet", version="1"),
        source=SourceRef(topic="frames", partition=0, offset=seq, seq=seq),
        timings=_timings(),
        width=width,
        height=height,
        detections=dets,
    )


def person_mask(height: int = 512, width: int = 512) -> np.ndarray:
    """A real-looking region: an ellipse (head) on a trapezoid (shoulders)."""
    m = np.zeros((height, width), np.uint8)
    cv2.ellipse(m, (width // 2, height // 3), (width // 8, height // 6), 0, 0, 360, 1, -1)
    pts = np.array(
        [
            [width // 4, height - 1],
            [width * 3 // 4, height - 1],
            [width * 5 // 8, height // 2],
            [width * 3 // 8, height // 2],
        ],
        np.int32,
    )
    cv2.fillPoly(m, [pts], 1)
    return m


def segment(camera: str, seq: int, mask: np.ndarray) -> SegmentResult:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    h, w = mask.shape
    return SegmentResult(
        source_id=camera,
        model=ModelRef(name="selfie", version="1"),
        source=SourceRef(topic="frames", partition=0, offset=seq, seq=seq),
        timings=_timings(),
        width=w,
        height=h,
        mask=RleMask(size=(h, w), counts=rle["counts"].decode("ascii")),
        class_areas={"person": float(mask.mean())},
    )


LABELS = ("negative", "neutral", "positive")


def sentiment(source: str, seq: int, label: str | None = None, text: str = "") -> SentimentResult:
    label = label or LABELS[seq % 3]
    probs = {lab: (0.8 if lab == label else 0.1) for lab in LABELS}
    return SentimentResult(
        source_id=source,
        model=ModelRef(name="sentiment", version="3"),
        source=SourceRef(topic="text", partition=0, offset=seq, seq=seq),
        timings=_timings(),
        label=label,
        probs=probs,
        text=text or f"line {seq} is {label}",
    )


def jpeg_frame(camera: str, seq: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A real photo (scikit-image's astronaut, 512x512) as JPEG bytes plus frame headers."""
    from skimage import data

    rgb = data.astronaut()
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    assert ok
    meta = FrameHeaders(
        camera_id=camera,
        seq=seq,
        capture_ns=time.time_ns(),
        width=512,
        height=512,
        trace_id=uuid.uuid4().hex,
    )
    return buf.tobytes(), meta.to_kafka_headers()


@dataclass
class SinkEnv:
    settings: SinkSettings
    topic: Callable[[str], str]


def sink_settings(bootstrap: str, redis_url: str, name: str, **kw: object) -> SinkSettings:
    """Settings with per-test topics (a topic prefix), Redis prefix and group; topics created."""
    tag = uuid.uuid4().hex[:8]
    settings = SinkSettings(
        kafka_bootstrap=bootstrap,
        redis_url=redis_url,
        topic_prefix=f"t{tag}.",
        redis_prefix=f"ss{tag}",
        sink_group=f"sink-{tag}",
        service_name=f"sink-{name[:30]}",
        sink_thumb_min_interval_ms=0,
        **kw,  # type: ignore[arg-type]
    )
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [settings.topic(t) for t in (*results_topics(), Topic.FRAMES, Topic.CAMERAS_STATUS)]
    new = [NewTopic(n, num_partitions=2, replication_factor=1) for n in names]
    new += [NewTopic(n + ".dlq", num_partitions=1, replication_factor=1) for n in names]
    for fut in admin.create_topics(new).values():
        fut.result()
    return settings


_PRODUCERS: dict[str, Producer] = {}


def produce(settings: SinkSettings, records: list[tuple[str, bytes, str, list | None]]) -> None:
    """``(logical topic, value, key, headers)`` records, flushed and checked. The producer is
    kept per broker, so results' timings are not inflated by a producer's start-up."""
    p = _PRODUCERS.get(settings.kafka_bootstrap)
    if p is None:
        p = _PRODUCERS[settings.kafka_bootstrap] = Producer(settings, linger_ms=1)
    failed = p.failed
    for topic, value, key, headers in records:
        p.produce(settings.topic(topic), value, key=key, headers=headers)
    assert p.flush(30) == 0
    assert p.failed == failed


def close_producers() -> None:
    """Flush and drop the cached producers (before the session's broker stops)."""
    for p in _PRODUCERS.values():
        p.close(10)
    _PRODUCERS.clear()


def result_record(msg: DetectionResult | SegmentResult | SentimentResult) -> tuple:
    topic = {
        DetectionResult: "results.detections",
        SegmentResult: "results.segments",
        SentimentResult: "results.sentiment",
    }[type(msg)]
    return (topic, encode(msg), msg.source_id, None)
