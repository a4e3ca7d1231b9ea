"""Inference workers end to end on the real broker with the real zoo models."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from pycocotools import mask as mask_utils
from skimage import data

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import decode, encode
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.schemas.text import TextEvent
from streamsense.services.kafka.producer import Producer
from streamsense.services.runner import running
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.settings import WorkerSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all

pytestmark = [pytest.mark.integration, pytest.mark.models]


def _topics(bootstrap: str, prefix: str, partitions: int = 1) -> None:
    names = ["frames", "text", "results.detections", "results.segments", "results.sentiment"]
    names.append("models.updates")
    new = [NewTopic(prefix + n, num_partitions=partitions, replication_factor=1) for n in names]
    new += [
        NewTopic(prefix + n + ".dlq", num_partitions=1, replication_factor=1) for n in names[:2]
    ]
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the futures
    for fut in admin.create_topics(new).values():
        fut.result()


@pytest.fixture
def wsettings(stack: dict[str, str], zoo_store: Path) -> Iterator[dict[str, object]]:
    prefix = f"w{uuid.uuid4().hex[:8]}."
    _topics(stack["bootstrap"], prefix, partitions=2)
    # the frames of these tests are a backlog sent before the worker starts: served in full
    # (latency_budget_ms 0); the real-time policy has tests of its own below
    yield {
        "kafka_bootstrap": stack["bootstrap"],
        "topic_prefix": prefix,
        "model_store": zoo_store,
        "worker_latency_budget_ms": 0,
    }


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    assert ok
    return buf.tobytes()


def _send_frames(
    s: WorkerSettings,
    camera: str,
    images: list[np.ndarray],
    capture_ns: int | None = None,
    start_seq: int = 0,
) -> None:
    p = Producer(s)
    for i, img in enumerate(images):
        h = FrameHeaders(
            camera_id=camera,
            seq=start_seq + i,
            capture_ns=capture_ns or time.time_ns(),
            width=img.shape[1],
            height=img.shape[0],
            trace_id=uuid.uuid4().hex,
        )
        p.produce(s.topic("frames"), _jpeg(img), key=camera, headers=h.to_kafka_headers())
    assert p.flush(30) == 0


def _results(s: WorkerSettings, topic: str, n: int, timeout: float = 90) -> list[object]:
    return [decode(m.value()) for m in read_all(s.kafka_bootstrap, s.topic(topic), n, timeout)]


ASTRO = data.astronaut()
COFFEE = data.coffee()


def test_detect_worker_finds_objects_for_the_right_camera_and_seq(
    wsettings: dict[str, object],
) -> None:
    s = WorkerSettings(
        task="detect", service_name="t-detect", worker_max_frame_age_ms=0, **wsettings
    )  # type: ignore[arg-type]
    images = [ASTRO, COFFEE] * 3
    _send_frames(s, "cam-a", images)
    # a corrupt JPEG with valid headers goes to frames.dlq, the rest flow
    p = Producer(s)
    h = FrameHeaders(
        camera_id="cam-a", seq=99, capture_ns=time.time_ns(), width=512, height=512, trace_id="x"
    )
    p.produce(
        s.topic("frames"),
        b"\xff\xd8\xff\xe0 not really a jpeg",
        key="cam-a",
        headers=h.to_kafka_headers(),
    )
    p.flush(10)
    loop, _ = build_worker(s)
    with running(loop):
        results = _results(s, "results.detections", len(images))
        dead = read_all(s.kafka_bootstrap, s.topic("frames.dlq"), 1, 60)
    assert len(results) == len(images)
    by_seq = {r.source.seq: r for r in results if isinstance(r, DetectionResult)}
    assert sorted(by_seq) == list(range(len(images)))
    for seq, r in by_seq.items():
        assert r.source_id == "cam-a"
        assert r.model.name == "coco-centernet"
        assert r.source.topic == s.topic("frames")
        assert (r.width, r.height) == images[seq].shape[1::-1]
        labels = {d.label for d in r.detections if d.score >= 0.3}
        assert ("person" if seq % 2 == 0 else "cup") in labels, (seq, labels)
        for d in r.detections:
            assert 0 <= d.box.x1 < d.box.x2 <= 1
            assert d.box_px.x2 == pytest.approx(d.box.x2 * r.width, rel=1e-3, abs=0.5)
        assert r.timings.capture_ns is not None and r.timings.produced_ns >= r.timings.capture_ns
    assert len(dead) == 1
    info = DeadLetterInfo.from_kafka_headers(dead[0].headers())
    assert info.error_class == "BadFrameError" and "JPEG" in info.error_message


def test_segment_worker_masks_the_person_and_skips_stale_frames(
    wsettings: dict[str, object],
) -> None:
    s = WorkerSettings(
        task="segment", service_name="t-segment", worker_max_frame_age_ms=2000, **wsettings
    )  # type: ignore[arg-type]
    loop, handler = build_worker(s)
    _send_frames(s, "cam-s", [ASTRO] * 3, capture_ns=time.time_ns() - 60 * 10**9)  # a minute old
    _send_frames(s, "cam-s", [ASTRO] * 4, start_seq=3)
    with running(loop):
        results = _results(s, "results.segments", 4)
        wait_for(lambda: loop.processed >= 7, 30, "all 7 frames consumed")
    assert handler.stale == 3
    assert sorted(r.source.seq for r in results) == [3, 4, 5, 6]  # type: ignore[attr-defined]
    for r in results:
        assert isinstance(r, SegmentResult)
        assert r.model.name == "person-selfie"
        m = mask_utils.decode({"size": list(r.mask.size), "counts": r.mask.counts.encode()})
        h, w = m.shape
        assert r.class_areas["person"] == pytest.approx(m.mean(), abs=0.02)
        assert m[int(h * 0.75), int(w * 0.4)] == 1, "torso"
        assert m[int(h * 0.1), int(w * 0.1)] == 0, "flag / background"


def test_sentiment_worker_labels_text_and_dead_letters_malformed(
    wsettings: dict[str, object],
) -> None:
    s = WorkerSettings(task="sentiment", service_name="t-sentiment", **wsettings)  # type: ignore[arg-type]
    texts = [
        "I love this, what a wonderful happy day",
        "this is awful, I hate it, worst service ever",
        "great job team, amazing results, thank you",
        "terrible, broken again and nobody cares, so sad",
    ]
    p = Producer(s)
    for i, t in enumerate(texts):
        ev = TextEvent(source_id="app.log", text=t, ts_ns=time.time_ns(), seq=i, trace_id=f"t{i}")
        p.produce(s.topic("text"), encode(ev), key="app.log")
    p.produce(s.topic("text"), b'{"schema": "streamsense.text", "version": 1}', key="app.log")
    p.produce(s.topic("text"), b"\xc3\x28 not utf-8", key="app.log")
    assert p.flush(10) == 0
    loop, _ = build_worker(s)
    with running(loop):
        results = _results(s, "results.sentiment", len(texts))
        dead = read_all(s.kafka_bootstrap, s.topic("text.dlq"), 2, 60)
    got = {r.source.seq: r for r in results if isinstance(r, SentimentResult)}
    assert [got[i].label for i in range(4)] == ["positive", "negative", "positive", "negative"]
    for r in got.values():
        assert sum(r.probs.values()) == pytest.approx(1, abs=1e-3)
        assert r.model.name == "sentiment-tweets"
    reasons = sorted(DeadLetterInfo.from_kafka_headers(m.headers()).error_message for m in dead)
    assert len(reasons) == 2
    assert any("source_id" in r for r in reasons) and any(
        "JSON" in r or "UTF-8" in r for r in reasons
    )


def test_two_workers_in_one_group_split_the_partitions(wsettings: dict[str, object]) -> None:
    base = {"task": "segment", "worker_max_frame_age_ms": 0, **wsettings}
    a, _ = build_worker(WorkerSettings(service_name="t-seg-a", **base))  # type: ignore[arg-type]
    b, _ = build_worker(WorkerSettings(service_name="t-seg-b", **base))  # type: ignore[arg-type]
    s = WorkerSettings(**base)  # type: ignore[arg-type]
    with running(a), running(b):
        wait_for(
            lambda: len(a.assignment) == 1 and len(b.assignment) == 1, 60, "a 1/1 partition split"
        )
        for cam in ("cam-1", "cam-2", "cam-3", "cam-4"):
            _send_frames(s, cam, [ASTRO] * 3)
        results = _results(s, "results.segments", 12)
        wait_for(lambda: a.processed + b.processed >= 12, 30, "12 frames processed")
    assert a.processed > 0 and b.processed > 0
    assert len(results) == 12
    per_cam: dict[str, list[int]] = {}
    for r in results:
        per_cam.setdefault(r.source_id, []).append(r.source.seq)  # type: ignore[attr-defined]
    assert {k: sorted(v) for k, v in per_cam.items()} == {
        c: [0, 1, 2] for c in ("cam-1", "cam-2", "cam-3", "cam-4")
    }


def test_a_worker_that_is_behind_serves_the_newest_frame_of_each_camera(
    wsettings: dict[str, object],
) -> None:
    """Frames of three cameras, older than the latency budget (but not stale): the worker
    models the newest frame of each and counts the older ones as skipped, per camera."""
    s = WorkerSettings(
        task="segment", service_name="t-behind", **{**wsettings, "worker_latency_budget_ms": 300}
    )  # type: ignore[arg-type]
    loop, handler = build_worker(s)
    old = time.time_ns() - 2 * 10**9  # 2 s old: behind the budget, inside the age limit
    for cam in ("cam-x", "cam-y", "cam-z"):
        _send_frames(s, cam, [ASTRO] * 4, capture_ns=old)
    with running(loop):
        wait_for(lambda: loop.processed >= 12, 60, "all 12 frames consumed")
        wait_for(lambda: loop.producer.in_flight == 0, 10, "results acknowledged")
    served = {(r.source_id, r.source.seq) for r in _results(s, "results.segments", 12, 5)}  # type: ignore[attr-defined]
    assert {("cam-x", 3), ("cam-y", 3), ("cam-z", 3)} <= served, "each camera's newest frame"
    # frames a fetch held with a newer one of their camera were skipped, never modeled: how
    # the backlog splits into fetches decides how many, so assert the accounting
    assert handler.scheduler is not None
    skipped = handler.scheduler.skipped
    assert len(served) + sum(skipped.values()) == 12 and len(served) <= 6
    assert handler.skipped["behind"] == sum(skipped.values()) >= 6
