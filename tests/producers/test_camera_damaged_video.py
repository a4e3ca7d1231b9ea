"""A video file damaged in the middle (a disk error, a copy cut and patched, a bad upload):
every frame FFmpeg can still decode is sent, and the run says how many were not and ends with
exit 2, never "the source ended" and exit 0 at the first undecodable frame."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from streamsense.services.producers.sources import VideoFileSource
from tests.producers.conftest import topic_size

pytestmark = pytest.mark.integration


def _damaged(sample_video: Path, tmp_path: Path) -> Path:
    """The sample with 10%-60% of its bytes zeroed: its index (``moov``, at the end) is intact,
    so the frames after the hole are still there, and its first frames decode."""
    data = bytearray(sample_video.read_bytes())
    assert data.rfind(b"moov") > len(data) * 6 // 10, "the index must lie after the hole"
    lo, hi = len(data) // 10, len(data) * 6 // 10
    data[lo:hi] = bytes(hi - lo)
    path = tmp_path / "damaged.mp4"
    path.write_bytes(data)
    return path


def _decodable(path: Path) -> tuple[int, int]:
    """(frames OpenCV decodes when it keeps reading past failures, frames the file declares)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok = sum(1 for _ in range(declared * 2) if cap.read()[0])
    cap.release()
    return ok, declared


def test_the_source_reads_past_a_damaged_stretch_and_says_what_it_lost(
    sample_video: Path, tmp_path: Path
) -> None:
    path = _damaged(sample_video, tmp_path)
    decodable, declared = _decodable(path)
    assert 0 < decodable < declared == 30
    source = VideoFileSource(path)
    source.open()
    read = 0
    while source.read() is not None:
        read += 1
    assert read == decodable, "every decodable frame, not only those before the hole"
    assert source.damage == (
        f"video file {path} is damaged: {declared - decodable} of its {declared} frames could "
        f"not be decoded; the other {decodable} were read"
    )
    source.open()  # over again (--loop): the count starts over too
    assert source.damage is None
    source.close()


def test_an_undamaged_video_reports_no_damage(sample_video: Path) -> None:
    source = VideoFileSource(sample_video)
    source.open()
    read = 0
    while source.read() is not None:
        read += 1
    assert read == 30
    assert source.damage is None
    source.close()


def test_produce_camera_sends_every_decodable_frame_and_exits_2(
    stack: dict[str, str], frames_topic: Callable[[], str], sample_video: Path, tmp_path: Path
) -> None:
    """Before: 3 frames sent (those before the hole), "offline (the source ended)", exit 0."""
    path = _damaged(sample_video, tmp_path)
    decodable, declared = _decodable(path)
    frames = frames_topic()
    res = subprocess.run(
        [sys.executable, "-m", "streamsense.services.cli", "produce", "camera", "--source",
         str(path), "--camera-id", "dock", "--topic", frames, "--fps", "100"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120,
        # no drop-oldest while a fresh broker hands out producer ids: every frame read is sent
        env={**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"],
             "STREAMSENSE_CAMERA_STATUS_TOPIC": "", "STREAMSENSE_CAMERA_PENDING_LIMIT": "100"},
        check=False,
    )  # fmt: skip
    assert topic_size(stack["bootstrap"], frames) == decodable, res.stderr[-2000:]
    assert res.returncode == 2, res.stderr[-2000:]
    errors = [" ".join(x.split()) for x in res.stderr.splitlines() if x.startswith("error:")]
    assert errors == [
        f"error: video file {path} is damaged: {declared - decodable} of its {declared} frames "
        f"could not be decoded; the other {decodable} were read"
    ]
