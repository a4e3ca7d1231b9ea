"""Fixtures of the producer tests: a short sample video, an image folder, topic helpers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.schemas.cameras import CameraStatus
from streamsense.schemas.registry import decode
from streamsense.services.samples.video import make_video
from tests.kafka_helpers import read_all

FRAME_MAX = str(16 * 1024 * 1024)


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1280x720, 10 fps, 3 s = 30 frames."""
    path = tmp_path_factory.mktemp("video") / "sample.mp4"
    make_video(path, fps=10, seconds=3.0)
    return path


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory, sample_video: Path) -> Path:
    """Eight 1280x720 frames of the sample as numbered JPEG/PNG files, plus a text file."""
    folder = tmp_path_factory.mktemp("images")
    cap = cv2.VideoCapture(str(sample_video))
    for i in range(8):
        ok, frame = cap.read()
        assert ok
        cv2.imwrite(str(folder / f"frame-{i:02d}.{'png' if i % 2 else 'jpg'}"), frame)
    cap.release()
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def frames_topic(stack: dict[str, str]) -> Callable[[], str]:
    """A one-partition topic that accepts 16 MiB records (like ``frames``)."""
    admin = AdminClient({"bootstrap.servers": stack["bootstrap"]})

    def _make() -> str:
        name = f"frames.{uuid.uuid4().hex[:10]}"
        fut = admin.create_topics([NewTopic(name, 1, 1, config={"max.message.bytes": FRAME_MAX})])[
            name
        ]
        fut.result()
        return name

    return _make


@pytest.fixture
def status_topic(stack: dict[str, str]) -> Callable[[], str]:
    """A compacted three-partition topic like ``cameras.status``."""
    admin = AdminClient({"bootstrap.servers": stack["bootstrap"]})

    def _make() -> str:
        name = f"status.{uuid.uuid4().hex[:10]}"
        new = NewTopic(name, 3, 1, config={"cleanup.policy": "compact"})
        admin.create_topics([new])[name].result()
        return name

    return _make


def statuses(bootstrap: str, topic: str, n: int, timeout: float = 20) -> list[CameraStatus]:
    """The first ``n`` statuses of ``topic`` (fewer on timeout), each checked against its key."""
    out = []
    for m in read_all(bootstrap, topic, n, timeout=timeout):
        status = decode(m.value(), CameraStatus)
        assert m.key() == status.camera_id.encode()
        out.append(status)
    return sorted(out, key=lambda s: s.updated_ns)


def topic_size(bootstrap: str, topic: str, partitions: int = 1) -> int:
    """Records in ``topic`` (sum of high watermarks): counts duplicates that read_all would hide."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "size-probe"})
    try:
        return sum(
            c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        )
    finally:
        c.close()
