"""Every frame the producer makes fits the frame contract, whatever ``width`` asks: within the
pixel budget (aspect kept) and within a frame record's bytes (quality lowered, then refused)."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from streamsense.schemas.catalog import FRAME_MAX_PIXELS
from streamsense.services.producers.encode import FrameEncoder
from streamsense.services.producers.exceptions import FrameTooLargeError


@pytest.mark.parametrize(
    ("w", "h", "want"),
    [
        (640, 480, (9459, 7094)),  # 16384x12288 asked: 201 M pixels, a 600 MB buffer before
        (100, 60_000, (334, 200_662)),  # a tall strip: 9.8 G pixels asked
        (1280, 720, (8192, 4608)),  # 4:3 or 16:9 within the budget: as asked
    ],
)
def test_a_width_beyond_the_pixel_budget_is_scaled_down_to_it(
    w: int, h: int, want: tuple[int, int]
) -> None:
    tw, th = FrameEncoder(width=16384 if w != 1280 else 8192).size(w, h)
    assert (tw, th) == want
    assert tw * th <= FRAME_MAX_PIXELS
    assert abs(tw / th - w / h) / (w / h) < 0.01, "aspect kept"


def test_a_frame_over_the_record_size_is_encoded_again_at_lower_quality(
    caplog: pytest.LogCaptureFixture,
) -> None:
    noise = np.random.default_rng(3).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    plain, _, _ = FrameEncoder(quality=90).encode(noise)
    caplog.set_level(logging.WARNING, logger="streamsense")
    enc = FrameEncoder(quality=90, max_bytes=len(plain) // 2)
    for _ in range(3):
        data, w, h = enc.encode(noise)
        assert (w, h) == (640, 480) and len(data) <= len(plain) // 2
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"640x480 frames over {len(plain) // 2} bytes as JPEG at quality 90: sent at "
                    "quality 45"], "once per camera, not per frame"  # fmt: skip
    with pytest.raises(
        FrameTooLargeError,
        match=r"640x480 frame is [\d,]+ bytes as JPEG even at "
        r"quality 10, over the 1,000 a frame may have: set a smaller width",
    ):
        FrameEncoder(quality=90, max_bytes=1000).encode(noise)
