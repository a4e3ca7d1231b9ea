"""Frame decoding for the vision workers: header checks, a decompression guard, JPEG decode.

Dimensions are read from the JPEG's SOF marker and checked against the Kafka headers and a pixel
budget *before* decoding, so a file that declares 60000x60000 never allocates 10 GB. When the
model needs far fewer pixels than the frame has, libjpeg decodes at 1/2, 1/4 or 1/8 scale
(``IMREAD_REDUCED_COLOR_*``), which is several times faster than a full decode plus resize.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

import cv2
import numpy as np
from confluent_kafka import Message

from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.frames import FrameHeaders
from streamsense.services.workers.exceptions import BadFrameError

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_REDUCED = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)


@dataclass(slots=True)
class Frame:
    """A decoded frame (RGB) with its metadata; ``scale`` = source width / decoded width."""

    headers: FrameHeaders
    image: np.ndarray
    decode_ms: float


def jpeg_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the first SOF marker; BadFrameError when there is none."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        msg = "not a JPEG (no SOI marker)"
        raise BadFrameError(msg)
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            msg = f"corrupt JPEG: expected a marker at byte {i}"
            raise BadFrameError(msg)
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            if i + 9 > n:
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker == 0xDA or length < 2:  # start of scan before any SOF: corrupt
            break
        i += 2 + length
    msg = "corrupt JPEG: no frame header (SOF) found"
    raise BadFrameError(msg)


def reduction_for(width: int, height: int, need_side: int | None) -> int:
    """Largest libjpeg scale (1, 2, 4, 8) that keeps the short side >= ``need_side``."""
    if not need_side:
        return 1
    for factor, _flag in _REDUCED:
        if min(width, height) // factor >= need_side:
            return factor
    return 1


def decode_frame(
    msg: Message, *, max_bytes: int, max_pixels: int, need_side: int | None = None
) -> Frame:
    """Validate headers and bytes, then decode to RGB. Raises SchemaError or BadFrameError."""
    start = time.perf_counter()
    headers = FrameHeaders.from_kafka_headers(msg.headers())
    data = msg.value()
    if not data:
        msg_ = "frame has no bytes"
        raise BadFrameError(msg_)
    if len(data) > max_bytes:
        msg_ = f"frame of {len(data)} bytes exceeds the {max_bytes}-byte limit"
        raise BadFrameError(msg_)
    if headers.encoding != "jpeg":
        msg_ = f"unsupported frame encoding {headers.encoding!r}"
        raise BadFrameError(msg_)
    width, height = jpeg_size(data)
    if data.rstrip(b"\0")[-2:] != b"\xff\xd9":
        msg_ = "truncated JPEG (no end-of-image marker)"
        raise BadFrameError(msg_)
    if width * height > max_pixels:
        msg_ = f"JPEG declares {width}x{height}, over the {max_pixels}-pixel limit"
        raise BadFrameError(msg_)
    if (width, height) != (headers.width, headers.height):
        msg_ = f"JPEG is {width}x{height} but headers say {headers.width}x{headers.height}"
        raise BadFrameError(msg_)
    factor = reduction_for(width, height, need_side)
    flag = dict(_REDUCED).get(factor, cv2.IMREAD_COLOR)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if bgr is None:
        msg_ = "corrupt JPEG: OpenCV could not decode it"
        raise BadFrameError(msg_)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return Frame(headers, rgb, (time.perf_counter() - start) * 1000)


__all__ = ["Frame", "SchemaError", "decode_frame", "jpeg_size", "reduction_for"]
