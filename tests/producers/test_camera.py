"""The camera producer against the real broker: frames, headers, order, pacing, drops,
reconnects, and the CLI's exit codes."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from streamsense.schemas.frames import FrameHeaders
from streamsense.services.cli.app import app
from streamsense.services.producers.base import FrameSource, Image
from streamsense.services.producers.camera import CameraProducer
from streamsense.services.producers.exceptions import SourceError, SourceLostError
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.producers.sources import open_source
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.producers.conftest import statuses, topic_size

pytestmark = pytest.mark.integration


def cam_settings(stack: dict[str, str], topic: str, **kw: Any) -> CameraProducerSettings:
    """Queues large enough that nothing is dropped (a fresh broker can take a moment to hand
    out the idempotent producer id) unless a test asks for tiny ones: the drop tests do. No
    statuses unless a test asks (tests/producers/test_status.py does)."""
    queues = {"camera_max_in_flight": 64, "camera_pending_limit": 64, "camera_status_topic": None}
    return CameraProducerSettings(
        kafka_bootstrap=stack["bootstrap"],
        camera_topic=topic,
        service_name=f"test-cam-{uuid.uuid4().hex[:6]}",
        **{**queues, **kw},
    )


def frames_of(bootstrap: str, topic: str, n: int) -> list[tuple[FrameHeaders, np.ndarray, Any]]:
    out = []
    for m in read_all(bootstrap, topic, n, timeout=20):
        h = FrameHeaders.from_kafka_headers(m.headers())
        img = cv2.imdecode(np.frombuffer(m.value(), np.uint8), cv2.IMREAD_COLOR)
        out.append((h, img, m))
    return out


def test_video_file_frames_arrive_in_order_with_headers_and_decodable_jpeg(
    stack: dict[str, str], frames_topic: Callable[[], str], sample_video: Path
) -> None:
    topic = frames_topic()
    # queues large enough for the whole file: this test counts frames, drops are tested below
    s = cam_settings(
        stack,
        topic,
        camera_width=640,
        camera_fps=100.0,
    )
    before = time.time_ns()
    cam = CameraProducer(s, open_source(str(sample_video)), "cam-7")
    stats = cam.run()
    assert stats.sent == 30 and stats.read == 30 and cam.producer.dropped == 0
    got = frames_of(s.kafka_bootstrap, topic, 30)
    assert len(got) == 30 and topic_size(s.kafka_bootstrap, topic) == 30
    assert [h.seq for h, _, _ in got] == list(range(30))
    for h, img, m in got:
        assert m.key() == b"cam-7"
        assert (h.camera_id, h.encoding, h.width, h.height) == ("cam-7", "jpeg", 640, 360)
        assert img is not None and img.shape == (360, 640, 3)
        assert before <= h.capture_ns <= time.time_ns()
    assert len({h.trace_id for h, _, _ in got}) == 30
    caps = [h.capture_ns for h, _, _ in got]
    assert caps == sorted(caps)


def test_a_file_keeps_its_own_pace(
    stack: dict[str, str], frames_topic: Callable[[], str], sample_video: Path
) -> None:
    topic = frames_topic()
    s = cam_settings(stack, topic, camera_max_frames=8, camera_width=320)
    CameraProducer(s, open_source(str(sample_video)), "cam-pace").run()
    caps = [h.capture_ns for h, _, _ in frames_of(s.kafka_bootstrap, topic, 8)]
    gaps_ms = [(b - a) / 1e6 for a, b in zip(caps, caps[1:], strict=False)]
    assert statistics.median(gaps_ms) == pytest.approx(100, abs=25), gaps_ms  # the file's 10 fps


def test_image_folder_at_target_fps_and_loop(
    stack: dict[str, str], frames_topic: Callable[[], str], image_folder: Path
) -> None:
    topic = frames_topic()
    s = cam_settings(stack, topic, camera_fps=40.0, camera_loop=True, camera_max_frames=20)
    start = time.monotonic()
    stats = CameraProducer(s, open_source(str(image_folder)), "cam-dir").run()
    elapsed = time.monotonic() - start
    assert stats.sent == 20 and stats.loops == 2  # 8 images, looped: 8 + 8 + 4
    assert elapsed >= 19 / 40
    got = frames_of(s.kafka_bootstrap, topic, 20)
    assert [h.seq for h, _, _ in got] == list(range(20))
    assert all((h.width, h.height) == (1280, 720) for h, _, _ in got)


def test_unreachable_broker_keeps_only_the_newest_frames_and_counts_drops(
    image_folder: Path,
) -> None:
    dead = CameraProducerSettings(
        kafka_bootstrap="127.0.0.1:1",
        camera_topic="frames-nowhere",
        camera_status_topic=None,
        service_name="test-cam-dead",
        camera_loop=True,
        camera_max_frames=50,
        camera_flush_timeout_s=0.2,
        camera_width=64,
        camera_max_in_flight=2,
        camera_pending_limit=3,
    )
    cam = CameraProducer(
        dead,
        open_source(str(image_folder)),
        "cam-x",
        pace=False,
        kafka_config={"message.timeout.ms": 2000, "log_level": 0},
    )
    stats = cam.run()
    assert stats.sent == 50
    assert stats.dropped == 50 - 2 - 3
    waiting = [FrameHeaders.from_kafka_headers(r.headers).seq for r in cam.camera.pending]
    assert waiting == [47, 48, 49], "the newest frames wait, the oldest were dropped"
    assert cam.snapshot()["dropped"] == 45
    metric = REGISTRY.get_sample_value(
        "streamsense_producer_dropped_total",
        {"service": "test-cam-dead", "topic": "frames-nowhere"},
    )
    assert metric == 45


def test_a_tiny_queue_on_a_real_broker_delivers_in_order_ending_with_the_last_frame(
    stack: dict[str, str], frames_topic: Callable[[], str], image_folder: Path
) -> None:
    topic = frames_topic()
    s = cam_settings(
        stack,
        topic,
        camera_loop=True,
        camera_max_frames=120,
        camera_max_in_flight=1,
        camera_pending_limit=1,
    )
    cam = CameraProducer(s, open_source(str(image_folder)), "cam-q", pace=False)
    p = cam.run()
    assert p.acked + p.dropped == 120 and p.failed == 0
    seqs = [h.seq for h, _, _ in frames_of(s.kafka_bootstrap, topic, p.acked)]
    assert len(seqs) == p.acked == topic_size(s.kafka_bootstrap, topic)
    assert seqs == sorted(set(seqs)) and seqs[-1] == 119, "newest frame always delivered"


class FlakyCamera(FrameSource):
    """A live source that delivers ``burst`` frames, is lost, and fails ``down`` reopen tries."""

    kind: ClassVar[str] = "stream"
    live: ClassVar[bool] = True

    def __init__(self, burst: int, down: int) -> None:
        super().__init__("flaky test camera")
        self.burst, self.down = burst, down
        self.opens = self.failed_opens = 0
        self._left = 0

    def open(self) -> None:
        if self.opens and self.failed_opens < self.down:
            self.failed_opens += 1
            raise SourceError("camera still rebooting")
        self.opens += 1
        self._left = self.burst

    def read(self) -> Image | None:
        if self._left <= 0:
            return None
        self._left -= 1
        return np.full((48, 64, 3), 100 * self.opens + 10 * self._left, np.uint8)

    @property
    def fps(self) -> float | None:
        return None

    def close(self) -> None:
        self._left = 0

    @property
    def is_open(self) -> bool:
        return self._left > 0


def test_a_lost_live_source_is_reconnected_with_backoff(
    stack: dict[str, str], frames_topic: Callable[[], str]
) -> None:
    topic = frames_topic()
    s = cam_settings(
        stack,
        topic,
        camera_max_frames=10,
        camera_reconnect_attempts=5,
        camera_reconnect_initial_s=0.01,
    )
    src = FlakyCamera(burst=5, down=2)
    stats = CameraProducer(s, src, "cam-flaky").run()
    # a live source is never waited for: a frame read while the encoders are busy replaces the
    # one waiting (``behind``), so the 10 frames taken are the ones sent plus the ones replaced
    assert (stats.sent + stats.behind, stats.reconnects, src.failed_opens) == (10, 1, 2)
    got = frames_of(s.kafka_bootstrap, topic, stats.sent)
    assert [h.seq for h, _, _ in got] == list(range(stats.sent)), "seq continues across it"
    shades = [int(img[0, 0, 0]) for _, img, _ in got]
    assert abs(shades[-1] - 200) <= 3, "the last frame read, of the second connection, is sent"


def test_a_live_source_that_stays_away_ends_with_a_clear_error(
    stack: dict[str, str], frames_topic: Callable[[], str]
) -> None:
    s = cam_settings(
        stack, frames_topic(), camera_reconnect_attempts=3, camera_reconnect_initial_s=0.01
    )
    src = FlakyCamera(burst=3, down=1000)
    start = time.monotonic()
    with pytest.raises(SourceLostError, match="lost and not back after 3 attempts"):
        CameraProducer(s, src, "cam-gone").run()
    assert src.failed_opens == 3 and time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/no/such/file.mp4", "no such file or folder: /no/such/file.mp4"),
        ("http://127.0.0.1:1/cam.mjpg", "cannot connect to http://127.0.0.1:1/cam.mjpg: Conn"),
        ("57", "cannot open capture device 57"),
        ("EMPTY", "no images in folder"),
        ("TEXT", "is not a video OpenCV can decode"),
    ],
)
def test_bad_sources_exit_2_with_a_clear_message(
    stack: dict[str, str], tmp_path: Path, source: str, message: str
) -> None:
    if source == "EMPTY":
        (tmp_path / "empty").mkdir()
        source = str(tmp_path / "empty")
    elif source == "TEXT":
        source = str(tmp_path / "notes.mp4")
        Path(source).write_text("hello\n")
    env = {"STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"]}
    res = CliRunner().invoke(
        app, ["produce", "camera", "--source", source, "--camera-id", "c1"], env=env
    )
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_cli_missing_topic_exits_1(stack: dict[str, str], image_folder: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "produce",
            "camera",
            "--source",
            str(image_folder),
            "--camera-id",
            "c1",
            "--topic",
            "no-such-topic-here",
        ],
        env={"STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"]},
    )
    assert res.exit_code == 1
    assert "topic 'no-such-topic-here' does not exist" in " ".join(res.output.split())


def test_cli_sigterm_stops_cleanly_after_flushing(
    stack: dict[str, str],
    frames_topic: Callable[[], str],
    status_topic: Callable[[], str],
    image_folder: Path,
) -> None:
    topic, states = frames_topic(), status_topic()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamsense.services.cli",
            "produce",
            "camera",
            "--source",
            str(image_folder),
            "--camera-id",
            "cam-term",
            "--loop",
            "--fps",
            "30",
            "--width",
            "320",
            "--topic",
            topic,
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"],
            "STREAMSENSE_CAMERA_STATUS_TOPIC": states,
        },
    )
    try:
        wait_for(lambda: topic_size(stack["bootstrap"], topic) >= 10, 30, "10 frames")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "SIGTERM: finishing in-flight work, then stopping" in out
    summary = {
        parts[0]: int(parts[1].replace(",", ""))
        for ln in out.splitlines()
        if len(parts := ln.replace("│", " ").split()) == 2 and parts[1].replace(",", "").isdigit()
    }
    n = topic_size(stack["bootstrap"], topic)
    assert summary["sent"] >= 10 and summary["failed"] == summary["in_flight"] == 0
    assert n == summary["acked"] == summary["sent"] - summary["dropped"], "all flushed at exit"
    got = frames_of(stack["bootstrap"], topic, n)
    assert [h.seq for h, _, _ in got] == sorted({h.seq for h, _, _ in got})
    assert got[-1][0].seq == summary["sent"] - 1, "the newest frame is never the one dropped"
    # the single camera publishes its state like a fleet's: online while it ran, then offline
    published = statuses(stack["bootstrap"], states, topic_size(stack["bootstrap"], states, 3))
    assert "online" in {p.state for p in published}
    assert {p.camera_id for p in published} == {"cam-term"}
    last = published[-1]
    assert (last.state, last.reason, last.frames_sent) == ("offline", "stopped", summary["sent"])
    assert last.last_seq == summary["sent"] - 1 and last.target_fps == 30


def test_no_frames_are_lost_between_threads(
    stack: dict[str, str], frames_topic: Callable[[], str], image_folder: Path
) -> None:
    """``stop`` from another thread ends the loop promptly and flushes."""
    topic = frames_topic()
    s = cam_settings(stack, topic, camera_loop=True, camera_fps=50.0, camera_width=128)
    stop = threading.Event()
    cam = CameraProducer(s, open_source(str(image_folder)), "cam-stop", stop=stop)
    t = threading.Thread(target=cam.run)
    t.start()
    wait_for(lambda: cam.stats.sent >= 15, 20, "15 frames sent")
    stop.set()
    t.join(10)
    assert not t.is_alive()
    p = cam.stats
    assert topic_size(s.kafka_bootstrap, topic) == p.acked
    assert p.acked + p.dropped == p.sent and cam.snapshot()["in_flight"] == 0
