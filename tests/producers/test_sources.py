"""Frame sources and the encoder: kinds, order, sizes and clear errors (no Kafka)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamsense.services.producers.encode import FrameEncoder
from streamsense.services.producers.exceptions import SourceError
from streamsense.services.producers.sources import (
    DeviceSource,
    ImageFolderSource,
    StreamSource,
    VideoFileSource,
    open_source,
)


def test_the_source_string_picks_the_kind(sample_video: Path, image_folder: Path) -> None:
    assert isinstance(open_source("0"), DeviceSource)
    assert isinstance(open_source("rtsp://cam.local/stream"), StreamSource)
    assert isinstance(open_source(str(sample_video)), VideoFileSource)
    assert isinstance(open_source(str(image_folder)), ImageFolderSource)
    assert isinstance(open_source(str(image_folder / "*.png")), ImageFolderSource)
    one = open_source(str(image_folder / "frame-00.jpg"))
    assert isinstance(one, ImageFolderSource) and len(one.paths) == 1


def test_video_file_reads_every_frame_at_its_rate(sample_video: Path) -> None:
    with open_source(str(sample_video)) as src:
        assert src.fps == pytest.approx(10.0)
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert len(frames) == 30
    assert frames[0].shape == (720, 1280, 3) and frames[0].dtype == np.uint8


def test_folder_reads_images_in_name_order_and_skips_other_files(image_folder: Path) -> None:
    src = open_source(str(image_folder))
    assert isinstance(src, ImageFolderSource)
    assert [p.name for p in src.paths] == [
        f"frame-{i:02d}.{'png' if i % 2 else 'jpg'}" for i in range(8)
    ]
    with src:
        n = 0
        while src.read() is not None:
            n += 1
    assert n == 8


def test_glob_selects_matching_images(image_folder: Path) -> None:
    src = open_source(str(image_folder / "frame-0[0-3].*"))
    assert [p.name for p in src.paths] == [
        "frame-00.jpg",
        "frame-01.png",
        "frame-02.jpg",
        "frame-03.png",
    ]


def test_a_corrupt_image_in_a_folder_is_skipped(tmp_path: Path, image_folder: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "b.jpg").write_bytes((image_folder / "frame-00.jpg").read_bytes())
    src = open_source(str(tmp_path))
    with src:
        assert src.read() is not None and src.read() is None
    assert isinstance(src, ImageFolderSource) and src.skipped == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/no/such/video.mp4", "no such file or folder: /no/such/video.mp4"),
        ("/no/such/*.jpg", "no images in glob /no/such/*.jpg"),
    ],
)
def test_missing_sources_fail_when_named(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message.replace("*", r"\*").replace(".", r"\.")):
        open_source(spec)


def test_unreadable_sources_fail_on_open(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images in folder"):
        open_source(str(tmp_path / "empty"))
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(SourceError, match="is not a video OpenCV can decode"):
        open_source(str(fake)).open()
    with pytest.raises(SourceError, match="cannot open capture device 57"):
        open_source("57").open()
    with pytest.raises(SourceError, match="cannot connect to http://127.0.0.1:1/cam: Connection"):
        open_source("http://127.0.0.1:1/cam").open()


def test_encoder_resizes_keeping_aspect_and_encodes_jpeg() -> None:
    image = np.random.default_rng(1).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    data, w, h = FrameEncoder(640, 80).encode(image)
    assert (w, h) == (640, 360)
    assert data[:3] == b"\xff\xd8\xff"
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (360, 640, 3)
    low, _, _ = FrameEncoder(None, 20).encode(image)
    high, w2, h2 = FrameEncoder(None, 95).encode(image)
    assert (w2, h2) == (1280, 720) and len(low) < len(high)


def test_stream_urls_lose_their_password_wherever_they_are_shown() -> None:
    src = open_source("rtsp://admin:s3cr%40t@10.0.0.5:554/live?ch=1")
    assert src.description == "stream rtsp://admin:***@10.0.0.5:554/live?ch=1"
    assert "s3cr" not in repr(src)
    assert open_source("rtsp://10.0.0.5/live").description == "stream rtsp://10.0.0.5/live"
    assert open_source("http://:tok@cam/x.mjpg").description == "stream http://***@cam/x.mjpg"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "concat:a.mp4|b.mp4://x", "gopher://h/x"])
def test_only_stream_schemes_are_streams(url: str) -> None:
    with pytest.raises(SourceError, match="unsupported stream scheme"):
        open_source(url)
