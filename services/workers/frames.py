"""Frame decoding for the vision workers: headers parsed once, then the decompression guard.

:func:`check_frame` is cheap (headers, size, format, dimensions from the JPEG's SOF marker,
checked against the headers and a pixel budget) and runs for every frame, stale or not, so a
poison frame always reaches the dead-letter topic. :func:`decode_checked` then decodes, at
1/2, 1/4 or 1/8 scale when the model needs far fewer pixels (see
:mod:`streamsense.models.decoding`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from confluent_kafka import Message

from streamsense.models.decoding import ImageInfo, check_image, decode_image
from streamsense.models.exceptions import BadImageError
from streamsense.schemas.frames import FrameHeaders
from streamsense.services.kafka.headers import headers_of
from streamsense.services.workers.exceptions import BadFrameError


@dataclass(slots=True)
class Frame:
    """A decoded frame (RGB) with its metadata."""

    headers: FrameHeaders
    image: np.ndarray
    decode_ms: float


@dataclass(slots=True)
class CheckedFrame:
    """A frame whose headers and bytes passed every check, not decoded yet."""

    headers: FrameHeaders
    data: bytes
    info: ImageInfo


def check_frame(msg: Message, *, max_bytes: int, max_pixels: int) -> CheckedFrame:
    """Parse the headers and check the bytes. Raises SchemaError or BadFrameError."""
    headers = FrameHeaders.from_kafka_headers(headers_of(msg))
    data = msg.value()
    try:
        if headers.encoding != "jpeg":
            msg_ = f"unsupported frame encoding {headers.encoding!r}"
            raise BadImageError(msg_)  # noqa: TRY301 - one error path below
        info = check_image(data, encoding="jpeg", max_bytes=max_bytes, max_pixels=max_pixels)
    except BadImageError as exc:
        raise BadFrameError(str(exc)) from exc
    assert data is not None
    if (info.width, info.height) != (headers.width, headers.height):
        msg_ = (
            f"JPEG is {info.width}x{info.height} but headers say {headers.width}x{headers.height}"
        )
        raise BadFrameError(msg_)
    return CheckedFrame(headers, data, info)


def decode_checked(frame: CheckedFrame, need_side: int | None = None) -> np.ndarray:
    """RGB pixels of a checked frame. Raises BadFrameError when the codec refuses it."""
    try:
        return decode_image(frame.data, frame.info, need_side=need_side)
    except BadImageError as exc:
        raise BadFrameError(str(exc)) from exc


def decode_frame(
    msg: Message, *, max_bytes: int, max_pixels: int, need_side: int | None = None
) -> Frame:
    """:func:`check_frame` then :func:`decode_checked`, timed."""
    start = time.perf_counter()
    checked = check_frame(msg, max_bytes=max_bytes, max_pixels=max_pixels)
    image = decode_checked(checked, need_side)
    return Frame(checked.headers, image, (time.perf_counter() - start) * 1000)
