"""``produce cameras``: the fleet file's validation (one line naming the camera and the field,
exit 2), and a fleet of cameras in one process against the real broker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from streamsense.services.cli.app import app
from streamsense.services.producers.exceptions import FleetConfigError
from streamsense.services.producers.fleet import CameraFleet
from streamsense.services.producers.fleet_config import MAX_CAMERAS, MAX_FILE_BYTES, load_fleet
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.producers.spec import ReconnectPolicy
from tests.producers.conftest import statuses, topic_size
from tests.producers.test_camera import frames_of


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def video_dir(tmp_path: Path, sample_video: Path) -> Path:
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "door.mp4").write_bytes(sample_video.read_bytes())
    return tmp_path


def test_values_come_from_the_camera_then_defaults_then_settings(video_dir: Path) -> None:
    path = _file(
        video_dir,
        "defaults:\n"
        "  fps: 5\n"
        "  width: 640\n"
        "  reconnect: {max_s: 1.5, attempts: 4}\n"
        "cameras:\n"
        "  - id: door\n"
        "    source: videos/door.mp4\n"
        "    loop: true\n"
        "  - id: lobby\n"
        "    source: rtsp://admin:s3cret@10.0.0.5/stream1\n"
        "    fps: 2.5\n"
        "    reconnect: {initial_s: 0.2}\n",
    )
    settings = CameraProducerSettings(camera_jpeg_quality=70, camera_read_timeout_s=3)
    door, lobby = load_fleet(path, settings)
    assert door.source == str(video_dir / "videos" / "door.mp4"), "relative to the file"
    assert (door.fps, door.width, door.loop, door.jpeg_quality) == (5, 640, True, 70)
    assert door.reconnect == ReconnectPolicy(initial_s=0.5, max_s=1.5, attempts=4)
    assert (lobby.fps, lobby.width, lobby.loop, lobby.read_timeout_s) == (2.5, 640, False, 3)
    assert lobby.reconnect == ReconnectPolicy(initial_s=0.2, max_s=1.5, attempts=4)


def test_a_fleet_retries_until_stopped_unless_its_file_says_otherwise(tmp_path: Path) -> None:
    path = _file(tmp_path, "cameras:\n  - {id: a, source: 'rtsp://10.0.0.5/s'}\n")
    (spec,) = load_fleet(path, CameraProducerSettings())
    assert spec.reconnect == ReconnectPolicy(initial_s=0.5, max_s=2.0, attempts=None)


CAM = "cameras:\n  - id: a\n    source: rtsp://10.0.0.5/s\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cameras: []\n", "cameras.yaml: `cameras:` must be a list of at least one camera"),
        ("- a\n", "cameras.yaml: expected a mapping with `cameras:`"),
        ("camras: []\n", "unknown key(s) camras: expected `defaults:` and `cameras:`"),
        ("cameras: [\n", "cameras.yaml: not valid YAML: line 2, column 1:"),
        (CAM + "    fps: -1\n",
         "cameras.yaml: camera 'a' (cameras[0]): fps: Input should be greater than 0 (got -1)"),
        (CAM + "    fps: fast\n", "camera 'a' (cameras[0]): fps: Input should be a valid number"),
        (CAM + "    fsp: 5\n", "camera 'a' (cameras[0]): fsp: unknown field"),
        (CAM + "    loop: maybe\n", "camera 'a' (cameras[0]): loop: Input should be a valid bool"),
        (CAM + "    reconnect: {max_s: 0}\n",
         "camera 'a' (cameras[0]): reconnect.max_s: Input should be greater than 0 (got 0)"),
        (CAM + "    reconnect: {attempts: 1.5}\n",
         "camera 'a' (cameras[0]): reconnect.attempts: Input should be a valid integer"),
        (CAM + "    fps: 5\n    fps: 6\n", "cameras.yaml: line 5: key 'fps' appears twice"),
        (CAM + CAM[9:], "cameras.yaml: camera 'a' (cameras[1]): id 'a' is also cameras[0]'s"),
        ("defaults: {width: 8}\n" + CAM,
         "cameras.yaml: defaults: width: Input should be greater than or equal to 16 (got 8)"),
        ("cameras:\n  - just-a-string\n", "cameras.yaml: cameras[0]: expected a mapping with"),
        ("cameras:\n  - {source: 'rtsp://h/s'}\n", "cameras.yaml: cameras[0]: id: Field required"),
        ("cameras:\n  - {id: 7, source: 'rtsp://h/s'}\n",
         "cameras[0]: id: Input should be a valid string (got 7)"),
        ("cameras:\n  - {id: a, source: missing.mp4}\n",
         "camera 'a' (cameras[0]): source: no such file or folder: missing.mp4"),
        ("cameras:\n  - {id: a, source: 'file:///etc/passwd'}\n",
         "camera 'a' (cameras[0]): source: unsupported stream scheme 'file'"),
        ("cameras:\n" + "".join(f"  - {{id: c{i}, source: 'rtsp://h/{i}'}}\n"
                                for i in range(MAX_CAMERAS + 1)),
         f"cameras.yaml: {MAX_CAMERAS + 1} cameras, more than {MAX_CAMERAS} in one process"),
    ],
)  # fmt: skip
def test_an_invalid_fleet_file_is_one_line_naming_the_camera_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(FleetConfigError) as err:
        load_fleet(_file(tmp_path, text), CameraProducerSettings())
    assert message in str(err.value) and "\n" not in str(err.value)


def test_credentials_never_appear_in_errors_or_the_check(tmp_path: Path) -> None:
    bad = _file(tmp_path, "cameras:\n  - {id: a, source: 'ftp://admin:s3cret@h/s', fps: 0}\n")
    with pytest.raises(FleetConfigError) as err:
        load_fleet(bad, CameraProducerSettings())
    assert "s3cret" not in str(err.value) and "fps" in str(err.value)
    good = _file(tmp_path, "cameras:\n  - {id: a, source: 'rtsp://admin:s3cret@h/s', fps: 4}\n")
    res = CliRunner().invoke(app, ["produce", "cameras", "--config", str(good), "--check"])
    assert res.exit_code == 0, res.output
    assert "a: rtsp://admin:***@h/s at 4 fps" in res.output and "s3cret" not in res.output
    assert f"1 camera(s): {good} is valid" in " ".join(res.output.split())


def test_the_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    path = _file(tmp_path, CAM + "    width: 3\n")
    res = CliRunner().invoke(app, ["produce", "cameras", "--config", str(path)])
    assert res.exit_code == 2
    assert res.output.strip().startswith("error: cameras.yaml: camera 'a' (cameras[0]): width:")
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) <= 2
    res = CliRunner().invoke(app, ["produce", "cameras", "--config", str(tmp_path / "no.yaml")])
    assert res.exit_code == 2 and "cannot read" in res.output and "no.yaml" in res.output


def test_files_larger_than_a_fleet_file_are_refused_unread(tmp_path: Path) -> None:
    path = _file(tmp_path, "# " + "x" * (1024 * 1024) + "\n" + CAM)
    with pytest.raises(
        FleetConfigError, match=f"over {MAX_FILE_BYTES // 1024} KiB: not a fleet file"
    ):
        load_fleet(path, CameraProducerSettings())


@pytest.mark.integration
def test_a_fleet_runs_its_cameras_in_one_process_each_with_its_own_rate_size_and_metrics(
    stack: dict[str, str],
    frames_topic: Callable[[], str],
    status_topic: Callable[[], str],
    video_dir: Path,
    image_folder: Path,
) -> None:
    frames, states = frames_topic(), status_topic()
    path = _file(
        video_dir,
        "defaults: {loop: true}\n"
        "cameras:\n"
        "  - {id: door, source: videos/door.mp4, fps: 20, width: 320, max_frames: 24}\n"
        "  - {id: hall, source: videos/door.mp4, fps: 10, width: 160, max_frames: 12}\n"
        f"  - {{id: 'shelf/1', source: '{image_folder}', fps: 20, max_frames: 30}}\n",
    )
    service = f"test-fleet-{uuid.uuid4().hex[:6]}"
    settings = CameraProducerSettings(
        kafka_bootstrap=stack["bootstrap"],
        camera_topic=frames,
        camera_status_topic=states,
        camera_status_interval_s=0.2,
        service_name=service,
        # nothing dropped while a fresh broker hands out the producer id: this test counts
        camera_max_in_flight=64,
        camera_pending_limit=64,
    )
    fleet = CameraFleet(settings, load_fleet(path, settings))
    threads: list[int] = []
    before = threading.active_count()
    t = threading.Thread(target=fleet.run)
    t.start()
    try:  # the fleet ends by itself once every camera took its max_frames
        deadline = time.monotonic() + 30
        while t.is_alive() and time.monotonic() < deadline:
            threads.append(threading.active_count())
            t.join(0.05)
    finally:
        fleet.stop_event.set()
        t.join(30)
    want = {"door": (24, 320, 180), "hall": (12, 160, 90), "shelf/1": (30, 1280, 720)}
    got = frames_of(stack["bootstrap"], frames, sum(n for n, _, _ in want.values()))
    assert topic_size(stack["bootstrap"], frames) == 66
    for camera, (n, width, height) in want.items():
        mine = [(h, m) for h, _, m in got if h.camera_id == camera]
        assert [h.seq for h, _ in mine] == list(range(n)), camera
        assert all((h.width, h.height) == (width, height) for h, _ in mine), camera
        assert all(m.key() == camera.encode() for _, m in mine)
        labels = {"service": service, "camera": camera}
        assert REGISTRY.get_sample_value(
            "streamsense_camera_frames_total", {**labels, "outcome": "acked"}
        ) == n  # fmt: skip
        assert REGISTRY.get_sample_value(
            "streamsense_camera_state", {**labels, "state": "offline"}
        ) == 1  # fmt: skip
    door = [h.capture_ns for h, _, _ in got if h.camera_id == "door"]
    hall = [h.capture_ns for h, _, _ in got if h.camera_id == "hall"]
    assert (door[-1] - door[0]) / 1e9 == pytest.approx(23 / 20, abs=0.3), "door at 20 fps"
    assert (hall[-1] - hall[0]) / 1e9 == pytest.approx(11 / 10, abs=0.3), "hall at 10 fps"
    # threads: the fleet's, a reader per camera and the encoder pool, whatever the frames
    assert max(threads) - before <= 1 + 3 + settings.camera_encoders
    published = statuses(stack["bootstrap"], states, topic_size(stack["bootstrap"], states, 3))
    last = {s.camera_id: s for s in published}
    assert set(last) == set(want)
    for camera, (n, _, _) in want.items():
        assert last[camera].state == "offline", last[camera]
        assert last[camera].reason == f"{n} frames taken (max_frames)"
        assert last[camera].frames_sent == n and last[camera].last_seq == n - 1
    assert "online" in {s.state for s in published if s.camera_id == "shelf/1"}
