"""Camera thumbnails: the newest frame per camera, downscaled and re-encoded as JPEG.

Frame bytes are untrusted: they pass the decompression guard
(:func:`streamsense.models.decoding.check_image`) before any decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
from confluent_kafka import Message

from streamsense.models.decoding import check_image, decode_image
from streamsense.models.exceptions import BadImageError
from streamsense.schemas.catalog import FRAME_MAX_BYTES, FRAME_MAX_PIXELS
from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.frames import FrameHeaders
from streamsense.services.kafka.headers import headers_of
from streamsense.services.sink.exceptions import ThumbnailError


@dataclass(frozen=True, slots=True)
class Thumbnail:
    camera_id: str
    jpeg: bytes
    width: int
    height: int
    seq: int
    capture_ns: int


def frame_headers(msg: Message) -> FrameHeaders:
    """The frame's headers; :class:`ThumbnailError` when they are invalid or cannot be read
    (a header key that is not UTF-8)."""
    try:
        return FrameHeaders.from_kafka_headers(headers_of(msg))
    except SchemaError as exc:
        raise ThumbnailError(str(exc)) from exc


def make_thumbnail(
    image: bytes, meta: FrameHeaders, width: int, quality: int, max_pixels: int = FRAME_MAX_PIXELS
) -> Thumbnail:
    """Decode ``image`` (JPEG/PNG), scale it to ``width`` pixels wide (never up), encode JPEG."""
    where = f"camera {meta.camera_id} seq {meta.seq}"
    try:
        info = check_image(
            image, encoding=meta.encoding, max_bytes=FRAME_MAX_BYTES, max_pixels=max_pixels
        )
        img = decode_image(image, info, need_width=width, rgb=False)
    except BadImageError as exc:
        msg = f"{where}: undecodable {meta.encoding} frame: {exc}"
        raise ThumbnailError(msg) from exc
    h, w = img.shape[:2]
    if w > width:
        img = cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, out = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        msg = f"{where}: JPEG encode failed"
        raise ThumbnailError(msg)
    th, tw = img.shape[:2]
    return Thumbnail(meta.camera_id, out.tobytes(), tw, th, meta.seq, meta.capture_ns)
