"""Frame sources read with OpenCV: video files, stream URLs (RTSP/HTTP), capture devices, image
folders and globs. :func:`open_source` picks the kind from the ``--source`` string."""

from __future__ import annotations

import errno
import logging
import math
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import cv2

from streamsense.models.decoding import check_image, decode_image, sniff_encoding
from streamsense.models.exceptions import BadImageError
from streamsense.schemas.catalog import FRAME_MAX_PIXELS
from streamsense.services.producers.base import FrameSource, Image
from streamsense.services.producers.exceptions import SourceError
from streamsense.services.producers.folder_listing import Listing, list_folder, list_glob
from streamsense.services.producers.probe import probe_stream
from streamsense.services.producers.redact import redact_url
from streamsense.services.producers.regular_file import NotRegularFileError, read_regular

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
#: Undecodable frames in a row a damaged video file is read past before it is taken to end there
MAX_DAMAGED_RUN = 3000


def read_image(path: Path, max_pixels: int = FRAME_MAX_PIXELS) -> Image:
    """A JPEG or PNG file, decoded (BGR) through the decompression guard; BadImageError for
    anything else: another format, too large, truncated, a bomb (the reason says which)."""
    # not following links: a file swapped for a symbolic link since the folder was listed is
    # refused (folder_listing.py)
    try:
        data = read_regular(path, IMAGE_MAX_BYTES + 1, follow_links=False)
    except NotRegularFileError:
        msg = "not a regular file"
        raise BadImageError(msg) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            msg = "a symbolic link (links in image folders are not followed)"
            raise BadImageError(msg) from None
        raise
    encoding = sniff_encoding(data)
    if encoding is None:
        msg = "not a JPEG or PNG (the only formats the decompression guard reads)"
        raise BadImageError(msg)
    info = check_image(data, encoding=encoding, max_bytes=IMAGE_MAX_BYTES, max_pixels=max_pixels)
    return decode_image(data, info, rgb=False)


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
    """A video file. A frame FFmpeg cannot decode (a damaged stretch: a disk error, a copy cut
    and patched) makes OpenCV's ``read`` fail while later frames still decode: reading goes on
    past it, up to as many failures in a row as the file declares frames still to come (at most
    :data:`MAX_DAMAGED_RUN`), so a hole costs only its own frames; :attr:`damage` then says how
    many were lost. Before, the first undecodable frame ended the file ("the source ended",
    exit 0) and every frame after it was lost in silence."""

    kind: ClassVar[str] = "file"

    def __init__(self, path: Path, decode_threads: int = 1) -> None:
        super().__init__(str(path), f"video file {path}")
        self.path = path
        self.decode_threads = decode_threads
        self._declared = 0
        self._got = 0
        self._undecodable = 0

    def open(self) -> None:
        super().open()
        assert self._cap is not None
        # an estimate for some containers, exact for MP4/MOV: it only bounds the reading on
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)  # a container may say -1, NaN or inf
        self._declared = int(count) if math.isfinite(count) and count > 0 else 0
        self._got, self._undecodable = 0, 0

    def read(self) -> Image | None:
        frame = super().read()
        failures = 0
        while frame is None and self._cap is not None:
            if failures >= min(self._declared - self._got, MAX_DAMAGED_RUN):
                return None  # the end (or a hole we give up on: damage says so)
            failures += 1
            frame = super().read()
        if failures:
            self._undecodable += failures
            log.warning("%s: %d frame(s) after frame %d could not be decoded (damaged): skipped",
                        self.description, failures, self._got)  # fmt: skip
        if frame is not None:
            self._got += 1
        return frame

    @property
    def damage(self) -> str | None:
        if not self._undecodable:
            return None
        lost = max(self._declared - self._got, self._undecodable)
        return (
            f"{self.description} is damaged: {lost} of its {self._declared} frames could not be "
            f"decoded; the other {self._got} were read"
        )

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
    any other file, or one the guard refuses, is skipped and logged with the reason, and the
    camera ends on an error saying how many (:attr:`damage`). Symbolic links, FIFOs and devices
    were left out when the folder was listed (``refused``)."""

    kind: ClassVar[str] = "folder"

    def __init__(self, paths: list[Path], description: str, refused: int = 0) -> None:
        super().__init__(description)
        if not paths:
            left = f"; {refused} link(s) or special file(s) skipped" if refused else ""
            msg = (
                f"no images in {description} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}{left})"
            )
            raise SourceError(msg)
        self.paths = paths
        #: entries left out at listing: links (not followed), FIFOs, devices
        self.refused = refused
        self._next = 0
        self._first: Image | None = None
        self._open = False
        self.skipped = 0
        self._reported: dict[Path, str] = {}
        #: the files skipped since :meth:`open`, with why (see :attr:`damage`)
        self._unread: list[tuple[Path, str]] = []

    def open(self) -> None:
        self._next = 0
        self._unread = []
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
                reason = str(exc)
                self._unread.append((path, reason))
                if self._reported.get(path) != reason:  # once per file, not at every loop
                    self._reported[path] = reason
                    log.warning("skipping %s: %s", path, reason)
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
    def damage(self) -> str | None:
        """The images of this pass that could not be read (corrupt, half-written, refused by
        the guard): a folder that ends with some is an error, not "the source ended" (exit 0)
        with only a warning per file in the log."""
        if not self._unread:
            return None
        path, reason = self._unread[0]
        return (
            f"{len(self._unread)} of the {len(self.paths)} images in {self.description} could "
            f"not be read and were skipped (the first: {path}: {reason})"
        )

    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        self._first = None
        self._open = False


def _check_url(url: str, scheme: str) -> None:
    """A stream URL the reader and the probe can use: it parses (a port in range, a valid IPv6
    host) and names a host (UDP and SRT may listen without one). Before, a bad port passed
    ``--check`` and the fleet, then the camera's reader died on a ValueError."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # parsed lazily: raises here for "cam:99999" or "cam:x"
    except ValueError as exc:  # its own text may quote a piece of the password: not shown
        why = (
            "the port is not a number from 0 to 65535" if "port" in str(exc).lower()
            else "the host is not a valid [IPv6] address" if "ipv6" in str(exc).lower()
            else "it cannot be parsed"
        )  # fmt: skip
        hint = "; in a password, write / # ? @ as %2F %23 %3F %40" if "@" in url else ""
        msg = f"invalid stream URL {redact_url(url)}: {why}{hint}"
        raise SourceError(msg) from None
    if not parts.hostname and scheme not in ("udp", "srt"):
        msg = f"stream URL {redact_url(url)} names no host"
        raise SourceError(msg)


def _folder_source(listing: Listing, description: str) -> ImageFolderSource:
    return ImageFolderSource(listing.paths, description, listing.refused)


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
        _check_url(spec, scheme)
        return StreamSource(spec, open_timeout_s, read_timeout_s, decode_threads)
    path = Path(spec).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_dir():  # the folder named may be a link; links in it are not followed
        return _folder_source(list_folder(path, IMAGE_SUFFIXES), f"folder {path}")
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:  # named by the operator: a link is resolved
            return ImageFolderSource([path.resolve()], f"image {path}")
        return VideoFileSource(path, decode_threads)
    if _GLOB_CHARS & set(spec):
        return _folder_source(list_glob(str(path), IMAGE_SUFFIXES), f"glob {redact_url(spec)}")
    msg = f"no such file or folder: {redact_url(spec)}"  # a mistyped URL may hold a password
    raise SourceError(msg)
