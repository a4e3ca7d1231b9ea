"""An image folder that changes under a looping camera: a FIFO put in an image's place, every
image removed. The camera never hangs in silence, the log is not flooded once per loop, and a
fleet whose cameras all failed does not exit 0."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from streamsense.services.producers.sources import ImageFolderSource, open_source
from tests.conftest import wait_for
from tests.producers.conftest import topic_size


def _folder(tmp_path: Path, image_folder: Path, n: int = 2) -> Path:
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(n):
        shutil.copy(image_folder / "frame-00.jpg", folder / f"{i}.jpg")
    return folder


def test_a_fifo_in_place_of_an_image_is_skipped_not_waited_for(
    tmp_path: Path, image_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the reader blocked in open() for ever, the camera "online" at 0 fps."""
    folder = _folder(tmp_path, image_folder)
    source = open_source(str(folder))
    assert isinstance(source, ImageFolderSource)
    (folder / "1.jpg").unlink()
    os.mkfifo(folder / "1.jpg")  # listed as an image when the source was made
    caplog.set_level(logging.WARNING, logger="streamsense")
    frames: list[int] = []

    def loop_three_times() -> None:
        for _ in range(3):
            source.open()
            while (image := source.read()) is not None:
                frames.append(image.shape[1])
            source.close()

    t = threading.Thread(target=loop_three_times, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "blocked opening the FIFO"
    assert frames == [1280, 1280, 1280]
    assert source.skipped == 3
    skips = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert skips == [f"skipping {folder / '1.jpg'}: not a regular file"], "once, not per loop"


@pytest.mark.integration
def test_a_fleet_whose_looping_folder_empties_does_not_exit_0(
    stack: dict[str, str], frames_topic: Callable[[], str], image_folder: Path, tmp_path: Path
) -> None:
    """Before: the camera went offline with the reason, and the fleet exited 0."""
    folder = _folder(tmp_path, image_folder)
    config = tmp_path / "cameras.yaml"
    config.write_text(f"cameras:\n  - {{id: shelf, source: '{folder}', loop: true, fps: 20}}\n")
    frames = frames_topic()
    out = tmp_path / "fleet.log"
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamsense.services.cli", "produce", "cameras", "--config",
             str(config), "--topic", frames],
            cwd=Path(__file__).resolve().parents[2], stdout=fh, stderr=subprocess.STDOUT,
            env={**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"],
                 "STREAMSENSE_CAMERA_STATUS_TOPIC": ""},
        )  # fmt: skip
    try:
        wait_for(lambda: topic_size(stack["bootstrap"], frames) >= 3, 30, "3 frames")
        for image in folder.iterdir():
            image.unlink()
        code = proc.wait(30)
    finally:
        proc.kill()
    text = " ".join(out.read_text().split())
    assert code == 3, text
    assert "error: every camera ended; ended on an error: shelf (none of the 2 files" in text
    assert "is a readable image)" in text and "Traceback" not in text


@pytest.mark.integration
def test_a_folder_run_with_an_unreadable_image_sends_the_rest_and_exits_2(
    stack: dict[str, str], frames_topic: Callable[[], str], image_folder: Path, tmp_path: Path
) -> None:
    """Before: the broken image was skipped with a warning and the run exited 0."""
    folder = _folder(tmp_path, image_folder, n=3)
    (folder / "1.jpg").write_bytes(b"\xff\xd8\xff\xe0 half-written")
    frames = frames_topic()
    res = subprocess.run(
        [sys.executable, "-m", "streamsense.services.cli", "produce", "camera", "--source",
         str(folder), "--camera-id", "shelf", "--topic", frames, "--fps", "50"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120,
        env={**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"],
             "STREAMSENSE_CAMERA_STATUS_TOPIC": "", "STREAMSENSE_CAMERA_PENDING_LIMIT": "100"},
        check=False,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr[-2000:]
    assert topic_size(stack["bootstrap"], frames) == 2, "the readable images were sent"
    errors = [" ".join(x.split()) for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, res.stderr[-2000:]
    assert errors[0].startswith(
        f"error: 1 of the 3 images in folder {folder} could not be read and were skipped "
        f"(the first: {folder / '1.jpg'}: "
    ), errors
