"""Frame sources read with OpenCV: video files, stream URLs (RTSP/HTTP), capture devices, image
folders and globs. :func:`open_source` picks the kind from the ``--source`` string."""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

import cv2

from streamsense.models.decoding import check_image, decode_image, sniff_encoding
from streamsense.models.exceptions import BadImageError
from streamsense.schemas.catalog import FRAME_MAX_PIXELS
from streamsense.services.producers.base import FrameSource, Image
from streamsense.services.producers.exceptions import SourceError
from streamsense.services.producers.probe import probe_stream

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
#: Seconds OpenCV's FFmpeg backend waits, by default, for a stream to open or deliver a frame.
STREAM_TIMEOUT_S = 5.0
#: The stream protocols a camera source may use (FFmpeg reads more, e.g. local files through
#: ``file:`` or ``concat:``, which a camera URL has no business naming).
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp"})
_GLOB_CHARS = frozenset("*?[")
#: Largest image file the folder source reads (an 8K PNG is ~100 MB at worst); its pixel budget
#: is the frames' (:data:`~streamsense.schemas.catalog.FRAME_MAX_PIXELS`).
IMAGE_MAX_BYTES = 128 * 1024 * 1024


def read_image(path: Path, max_pixels: int = FRAME_MAX_PIXELS) -> Image:
    """A JPEG or PNG file, decoded (BGR) through the decompression guard; BadImageError for
    anything else: another format, too large, truncated, a bomb (the reason says which)."""
    with path.open("rb") as fh:
        data = fh.read(IMAGE_MAX_BYTES + 1)
    encoding = sniff_encoding(data)
    if encoding is None:
        msg = "not a JPEG or PNG (the only formats the decompression guard reads)"
        raise BadImageError(msg)
    info = check_image(data, encoding=encoding, max_bytes=IMAGE_MAX_BYTES, max_pixels=max_pixels)
    return decode_image(data, info, rgb=False)


def _quiet_opencv() -> None:
    """OpenCV prints a WARN line for every failed open; our own error message says it better."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def redact_url(url: str) -> str:
    """``url`` without its password (``rtsp://admin:***@cam/``), for logs, errors and statuses."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


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
        # the container's declared size, checked before FFmpeg decodes a frame of it
        size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if size[0] * size[1] > FRAME_MAX_PIXELS:
            cap.release()
            msg = f"{self.description} declares {size[0]}x{size[1]}, over the frame pixel limit"
            raise SourceError(msg)
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

    def __init__(self, path: Path, decode_threads: int = 1) -> None:
        super().__init__(str(path), f"video file {path}")
        self.path = path
        self.decode_threads = decode_threads

    def _capture(self) -> cv2.VideoCapture:
        return cv2.VideoCapture(
            str(self.path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, self.decode_threads]
        )

    def _unreadable(self) -> str:
        return f"{self.path} is not a video OpenCV can decode"


class StreamSource(CaptureSource):
    kind: ClassVar[str] = "stream"
    live: ClassVar[bool] = True

    def __init__(
        self,
        url: str,
        open_timeout_s: float = STREAM_TIMEOUT_S,
        read_timeout_s: float = STREAM_TIMEOUT_S,
        decode_threads: int = 1,
    ) -> None:
        self.url = url  # with its credentials: only for FFmpeg
        self.shown = redact_url(url)
        super().__init__(url, f"stream {self.shown}")
        self.open_timeout_ms = round(open_timeout_s * 1000)
        self.read_timeout_ms = round(read_timeout_s * 1000)
        self.decode_threads = decode_threads

    def open(self) -> None:
        # a server that does not answer must not hold OpenCV's open lock (probe.py)
        probe_stream(self.url, self.shown, self.open_timeout_ms / 1000)
        super().open()

    def _capture(self) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.open_timeout_ms,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.read_timeout_ms,
                  cv2.CAP_PROP_N_THREADS, self.decode_threads]  # fmt: skip
        return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)

    def _unreadable(self) -> str:
        return f"cannot open stream {self.shown} (unreachable, refused or not a video stream)"


class DeviceSource(CaptureSource):
    kind: ClassVar[str] = "device"
    live: ClassVar[bool] = True

    def __init__(self, index: int) -> None:
        super().__init__(index, f"capture device {index}")
        self.index = index

    def _unreadable(self) -> str:
        return f"cannot open capture device {self.index} (is /dev/video{self.index} there?)"


class ImageFolderSource(FrameSource):
    """Sorted JPEG and PNG files decoded through the decompression guard (:func:`read_image`);
    any other file, or one the guard refuses, is skipped and logged with the reason."""

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
            try:
                return read_image(path)
            except (BadImageError, OSError) as exc:
                self.skipped += 1
                log.warning("skipping %s: %s", path, exc)
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


def open_source(
    spec: str,
    *,
    base: Path | None = None,
    open_timeout_s: float = STREAM_TIMEOUT_S,
    read_timeout_s: float = STREAM_TIMEOUT_S,
    decode_threads: int = 1,
) -> FrameSource:
    """The source a ``--source`` string names (not opened yet).

    ``0``, ``1``... a capture device; ``rtsp://``, ``http(s)://``... a stream (one of
    :data:`STREAM_SCHEMES`); a directory or a glob (``frames/*.jpg``) an image folder; an image
    file a one-image folder; any other file a video. A relative path is taken from ``base``
    (default: the working directory); files and streams decode with ``decode_threads`` FFmpeg
    threads. A missing path raises :class:`SourceError`.
    """
    spec = spec.strip()
    if not spec:
        msg = "empty --source"
        raise SourceError(msg)
    if spec.isdigit():
        return DeviceSource(int(spec))
    if "://" in spec:
        scheme = spec.split("://", 1)[0].lower()
        if scheme not in STREAM_SCHEMES:
            msg = (
                f"unsupported stream scheme {scheme!r}: expected one of "
                f"{', '.join(sorted(STREAM_SCHEMES))} (give files as paths)"
            )
            raise SourceError(msg)
        return StreamSource(spec, open_timeout_s, read_timeout_s, decode_threads)
    path = Path(spec).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_dir():
        return ImageFolderSource(_images_in([str(p) for p in path.iterdir()]), f"folder {path}")
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageFolderSource([path], f"image {path}")
        return VideoFileSource(path, decode_threads)
    if _GLOB_CHARS & set(spec):
        return ImageFolderSource(_images_in(glob.glob(str(path), recursive=True)), f"glob {spec}")
    msg = f"no such file or folder: {spec}"
    raise SourceError(msg)
