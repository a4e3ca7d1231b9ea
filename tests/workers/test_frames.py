"""Frame decoding guards, without Kafka: a fake message carries real JPEG bytes."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data

from streamsense.models.decoding import jpeg_size, reduction_for
from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.frames import FrameHeaders
from streamsense.services.workers.exceptions import BadFrameError
from streamsense.services.workers.frames import decode_frame


class FakeMsg:
    def __init__(self, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        self._v, self._h = value, headers

    def value(self) -> bytes | None:
        return self._v

    def headers(self) -> list[tuple[str, bytes]]:
        return self._h


def _jpeg(img: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return buf.tobytes()


def _headers(w: int, h: int) -> list[tuple[str, bytes]]:
    return FrameHeaders(
        camera_id="c", seq=0, capture_ns=1, width=w, height=h, trace_id="t"
    ).to_kafka_headers()


ASTRO = data.astronaut()  # 512x512 RGB
LIMITS = {"max_bytes": 10_000_000, "max_pixels": 4096 * 4096}


def test_decodes_rgb_at_full_size() -> None:
    frame = decode_frame(FakeMsg(_jpeg(ASTRO, 95), _headers(512, 512)), **LIMITS)  # type: ignore[arg-type]
    assert frame.image.shape == (512, 512, 3)
    # RGB order kept: the astronaut's suit is bright, the red of the flag stays red-dominant
    assert np.abs(frame.image.astype(int) - ASTRO.astype(int)).mean() < 4


def test_reduced_decode_when_the_model_needs_fewer_pixels() -> None:
    frame = decode_frame(FakeMsg(_jpeg(ASTRO), _headers(512, 512)), **LIMITS, need_side=128)  # type: ignore[arg-type]
    assert frame.image.shape == (128, 128, 3)
    assert reduction_for(1280, 720, 256) == 2
    assert reduction_for(1280, 720, 128) == 4
    assert reduction_for(1280, 720, 512) == 1
    assert reduction_for(1280, 720, None) == 1


def test_jpeg_size_reads_the_sof_marker() -> None:
    assert jpeg_size(_jpeg(np.zeros((37, 53, 3), np.uint8))) == (53, 37)


def _bomb(width: int, height: int) -> bytes:
    """A real tiny JPEG whose SOF marker is rewritten to declare huge dimensions."""
    raw = bytearray(_jpeg(np.zeros((8, 8, 3), np.uint8)))
    i = 2
    while raw[i + 1] not in (0xC0, 0xC2):
        i += 2 + struct.unpack(">H", raw[i + 2 : i + 4])[0]
    raw[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(raw)


@pytest.mark.parametrize(
    ("value", "headers", "error", "reason"),
    [
        (_bomb(60000, 60000), None, BadFrameError, "pixel limit"),
        (b"\xff\xd8\xff\xe0garbage", None, BadFrameError, "corrupt JPEG"),
        (b"PNG not a jpeg", None, BadFrameError, "not a JPEG"),
        (_jpeg(ASTRO)[:4000], None, BadFrameError, "truncated"),
        (b"", None, BadFrameError, "no bytes"),
        (_jpeg(ASTRO), _headers(640, 480), BadFrameError, "headers say 640x480"),
        (_jpeg(ASTRO), [("ss-schema", b"streamsense.frame")], SchemaError, "version"),
    ],
)
def test_bad_frames_raise_a_clear_error(
    value: bytes, headers: list[tuple[str, bytes]] | None, error: type[Exception], reason: str
) -> None:
    msg = FakeMsg(value, headers if headers is not None else _headers(512, 512))
    with pytest.raises(error, match=reason):
        decode_frame(msg, **LIMITS)  # type: ignore[arg-type]


def test_oversized_message_is_rejected_before_decoding() -> None:
    with pytest.raises(BadFrameError, match="exceeds"):
        decode_frame(FakeMsg(_jpeg(ASTRO), _headers(512, 512)), max_bytes=1000, max_pixels=10**8)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_decoder(blob: bytes) -> None:
    try:
        decode_frame(FakeMsg(b"\xff\xd8" + blob, _headers(512, 512)), **LIMITS)  # type: ignore[arg-type]
    except (BadFrameError, SchemaError):
        pass


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 20000), st.integers(1, 4000))
def test_corrupted_real_jpeg_never_crashes(pos: int, length: int) -> None:
    good = bytearray(_jpeg(ASTRO))
    pos = pos % len(good)
    good[pos : pos + length] = b"\x00" * min(length, len(good) - pos)
    try:
        frame = decode_frame(FakeMsg(bytes(good), _headers(512, 512)), **LIMITS)  # type: ignore[arg-type]
        assert frame.image.shape == (512, 512, 3)
    except (BadFrameError, SchemaError):
        pass
