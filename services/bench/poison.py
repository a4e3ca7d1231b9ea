"""Hostile inputs, one builder per class the data plane must survive (issue 14's corpus), used by
``streamsense bench hostile`` and by ``tests/reliability``:

- :func:`grows_when_recompressed`: text whose zstd batch fits the text topic's 1 MiB but whose
  lz4 (our producer's codec) does not, the dead letter that used to kill a worker;
- :func:`huge_non_jpeg`: a 20 MB frame of compressible non-JPEG bytes (its compressed batch passes
  the broker; uncompressed it is over every frame limit, local ones included);
- :func:`sof_bomb`: a tiny JPEG whose frame header declares a huge image (over the pixel budget,
  or within it but far more pixels than its bytes can hold);
- :func:`stale_poison`: an hour-old frame that is not a JPEG (validated before the age skip);
- :func:`giant_line`: a text line of many megabytes without a newline;
- :func:`unsafe_saved_model`: a SavedModel whose serving function reads a system file and writes
  one of its own.
"""

from __future__ import annotations

import struct
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

from streamsense.schemas.frames import FrameHeaders

Headers = list[tuple[str, bytes]]


def grows_when_recompressed(size: int = 2_000_000, seed: int = 0) -> bytes:
    """Random letters from an 8-letter alphabet: 3 bits of entropy a byte, which zstd's entropy
    coder reaches (~0.75 MB for 2 MB) and lz4, a pure match finder, does not (~2 MB)."""
    letters = np.random.default_rng(seed).integers(0, 8, size, dtype=np.uint8)
    return (letters + ord("a")).tobytes()


def huge_non_jpeg(size: int = 20_000_000) -> bytes:
    """``size`` bytes of a repeated text pattern: not a JPEG, and tiny once compressed."""
    pattern = b"this is not a jpeg frame; " * 64
    return (pattern * (size // len(pattern) + 1))[:size]


def _small_jpeg(progressive: bool) -> bytes:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    params = [cv2.IMWRITE_JPEG_QUALITY, 80]
    if progressive:
        params += [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
    ok, buf = cv2.imencode(".jpg", img, params)
    assert ok
    return buf.tobytes()


def sof_bomb(width: int, height: int, progressive: bool = True) -> bytes:
    """A real 64x64 JPEG (3 KB) whose SOF marker is rewritten to declare ``width`` x ``height``:
    libjpeg would allocate for the declared size (~400 MB for 8192x8192 progressive, even when
    decoding at 1/8 scale) and fill it with zeros."""
    data = bytearray(_small_jpeg(progressive))
    i = 2
    while i + 4 <= len(data):
        marker = data[i + 1]
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in (0xC0, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    msg = "no SOF marker in the encoded JPEG"
    raise AssertionError(msg)


def frame_headers(camera: str, seq: int, width: int, height: int, age_s: float = 0.0) -> Headers:
    """Frame headers as the camera producer writes them (``age_s`` in the past)."""
    return FrameHeaders(
        camera_id=camera,
        seq=seq,
        capture_ns=time.time_ns() - int(age_s * 1e9),
        width=width,
        height=height,
        trace_id=uuid.uuid4().hex,
    ).to_kafka_headers()


def stale_poison() -> bytes:
    """A JPEG cut in half (no end-of-image marker): send it with an hour-old ``capture_ns``."""
    whole = _small_jpeg(False)
    return whole[: len(whole) // 2]


def giant_line(size: int = 100_000_000) -> bytes:
    """``size`` bytes of text with no newline."""
    return b"giant " * (size // 6) + b"g" * (size % 6)


def unsafe_saved_model(path: Path, marker: Path) -> Path:
    """A SavedModel with a detector's signature whose graph reads ``/etc/hostname`` and writes
    ``marker``: what ``models register`` and the model loader must refuse without running it."""
    import tensorflow as tf

    class Exfiltrate(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            tf.io.write_file(str(marker), tf.io.read_file("/etc/hostname"))
            n = tf.shape(images)[0]
            return {
                "detection_boxes": tf.zeros([n, 1, 4]),
                "detection_scores": tf.zeros([n, 1]),
                "detection_classes": tf.zeros([n, 1]),
            }

    module = Exfiltrate()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path
