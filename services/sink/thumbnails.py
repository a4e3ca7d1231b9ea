"""Camera thumbnails: the newest frame per camera, downscaled and re-encoded as JPEG."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.frames import FrameHeaders, HeaderList
from streamsense.services.sink.exceptions import ThumbnailError

#: cv2 flags that decode at 1/2, 1/4 and 1/8 of the size (much cheaper than decode + resize).
_REDUCED = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)


@dataclass(frozen=True, slots=True)
class Thumbnail:
    camera_id: str
    jpeg: bytes
    width: int
    height: int
    seq: int
    capture_ns: int


def frame_headers(headers: HeaderList | None) -> FrameHeaders:
    try:
        return FrameHeaders.from_kafka_headers(headers)
    except SchemaError as exc:
        raise ThumbnailError(str(exc)) from exc


def make_thumbnail(image: bytes, meta: FrameHeaders, width: int, quality: int) -> Thumbnail:
    """Decode ``image`` (JPEG/PNG), scale it to ``width`` pixels wide (never up), encode JPEG."""
    buf = np.frombuffer(image, dtype=np.uint8)
    flag = cv2.IMREAD_COLOR
    for factor, reduced in _REDUCED:
        if meta.width // factor >= width and meta.encoding == "jpeg":
            flag = reduced
            break
    img = cv2.imdecode(buf, flag) if buf.size else None
    if img is None:
        msg = f"camera {meta.camera_id} seq {meta.seq}: undecodable {meta.encoding} frame"
        raise ThumbnailError(msg)
    h, w = img.shape[:2]
    if w > width:
        img = cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, out = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        msg = f"camera {meta.camera_id} seq {meta.seq}: JPEG encode failed"
        raise ThumbnailError(msg)
    th, tw = img.shape[:2]
    return Thumbnail(meta.camera_id, out.tobytes(), tw, th, meta.seq, meta.capture_ns)
