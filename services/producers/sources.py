"""Frame sources read with OpenCV: video files, stream URLs (RTSP/HTTP), capture devices, image
folders and globs. :func:`open_source` picks the kind from the ``--source`` string."""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import ClassVar

import cv2

from streamsense.services.producers.base import FrameSource, Image
from streamsense.services.producers.exceptions import SourceError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
#: Seconds OpenCV's FFmpeg backend waits for a stream to open or deliver a frame.
STREAM_TIMEOUT_MS = 5_000
_GLOB_CHARS = frozenset("*?[")


def _quiet_opencv() -> None:
    """OpenCV prints a WARN line for every failed open; our own error message says it better."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def _sane_fps(value: float) -> float | None:
    return value if 0.1 <= value <= 1000 else None


class CaptureSource(FrameSource):
    """Anything ``cv2.VideoCapture`` reads: a file, a stream URL or a device index."""

    def __init__(self, target: str | int, description: str) -> None:
        super().__init__(description)
        self._target = target
        self._cap: cv2.VideoCapture | None = None
        self._first: Image | None = None
        self._fps: float | None = None

    def _capture(self) -> cv2.VideoCapture:
        return cv2.VideoCapture(self._target)

    def _unreadable(self) -> str:
        return f"cannot open {self.description}"

    def open(self) -> None:
        self.close()
        _quiet_opencv()
        cap = self._capture()
        if not cap.isOpened():
            cap.release()
            raise SourceError(self._unreadable())
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            msg = f"{self._unreadable()}: no frame could be read"
            raise SourceError(msg)
        self._cap, self._first = cap, first
        self._fps = _sane_fps(float(cap.get(cv2.CAP_PROP_FPS) or 0.0))
        log.info("opened %s (%dx%d, fps %s)", self.description, first.shape[1], first.shape[0],
                 self._fps)  # fmt: skip

    def read(self) -> Image | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        return frame if ok and frame is not None else None

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def is_open(self) -> bool:
        return self._cap is not None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap, self._first = None, None


class VideoFileSource(CaptureSource):
    kind: ClassVar[str] = "file"

    def __init__(self, path: Path) -> None:
        super().__init__(str(path), f"video file {path}")
        self.path = path

    def _unreadable(self) -> str:
        return f"{self.path} is not a video OpenCV can decode"


class StreamSource(CaptureSource):
    kind: ClassVar[str] = "stream"
    live: ClassVar[bool] = True

    def __init__(self, url: str) -> None:
        super().__init__(url, f"stream {url}")
        self.url = url

    def _capture(self) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]  # fmt: skip
        return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)

    def _unreadable(self) -> str:
        return f"cannot open stream {self.url} (unreachable, refused or not a video stream)"


class DeviceSource(CaptureSource):
    kind: ClassVar[str] = "device"
    live: ClassVar[bool] = True

    def __init__(self, index: int) -> None:
        super().__init__(index, f"capture device {index}")
        self.index = index

    def _unreadable(self) -> str:
        return f"cannot open capture device {self.index} (is /dev/video{self.index} there?)"


class ImageFolderSource(FrameSource):
    """Sorted image files read with ``cv2.imread``; an undecodable file is skipped and logged."""

    kind: ClassVar[str] = "folder"

    def __init__(self, paths: list[Path], description: str) -> None:
        super().__init__(description)
        if not paths:
            msg = f"no images in {description} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
            raise SourceError(msg)
        self.paths = paths
        self._next = 0
        self._first: Image | None = None
        self._open = False
        self.skipped = 0

    def open(self) -> None:
        self._next = 0
        self._first = self._read_next()
        if self._first is None:
            msg = f"none of the {len(self.paths)} files in {self.description} is a readable image"
            raise SourceError(msg)
        self._open = True

    def _read_next(self) -> Image | None:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image
            self.skipped += 1
            log.warning("skipping %s: not an image OpenCV can decode", path)
        return None

    def read(self) -> Image | None:
        if not self._open:
            return None
        if self._first is not None:
            image, self._first = self._first, None
            return image
        return self._read_next()

    @property
    def fps(self) -> float | None:
        return None

    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        self._first = None
        self._open = False


def _images_in(paths: list[str]) -> list[Path]:
    return sorted(
        Path(p) for p in paths if Path(p).suffix.lower() in IMAGE_SUFFIXES and Path(p).is_file()
    )


def open_source(spec: str) -> FrameSource:
    """The source a ``--source`` string names (not opened yet).

    ``0``, ``1``... a capture device; ``rtsp://``, ``http(s)://``... a stream; a directory or a
    glob (``frames/*.jpg``) an image folder; an image file a one-image folder; any other file a
    video. A missing path raises :class:`SourceError`.
    """
    spec = spec.strip()
    if not spec:
        msg = "empty --source"
        raise SourceError(msg)
    if spec.isdigit():
        return DeviceSource(int(spec))
    if "://" in spec:
        return StreamSource(spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        return ImageFolderSource(_images_in([str(p) for p in path.iterdir()]), f"folder {path}")
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageFolderSource([path], f"image {path}")
        return VideoFileSource(path)
    if _GLOB_CHARS & set(spec):
        return ImageFolderSource(_images_in(glob.glob(str(path), recursive=True)), f"glob {spec}")
    msg = f"no such file or folder: {spec}"
    raise SourceError(msg)
