"""Resize to a target width (aspect kept) and JPEG-encode: the camera producer's hot path.

Every frame made here fits the frame contract, whatever the settings ask: at most
:data:`~streamsense.schemas.catalog.FRAME_MAX_PIXELS` (a ``width`` that would make more, such as
16384 on a 4:3 source, is scaled down to the budget, aspect kept) and at most
:data:`MAX_JPEG_BYTES` (a JPEG over it is encoded again at half the quality, down to 10). Before,
such frames were 600 MB buffers, then refused by Kafka or dead-lettered by every worker.
"""

from __future__ import annotations

import logging
import math

import cv2

from streamsense.schemas.catalog import FRAME_MAX_BYTES, FRAME_MAX_PIXELS
from streamsense.services.producers.base import Image
from streamsense.services.producers.exceptions import FrameTooLargeError

log = logging.getLogger(__name__)

#: An encoded frame leaves room for its record's headers and batch overhead (well under 64 KiB).
MAX_JPEG_BYTES = FRAME_MAX_BYTES - 64 * 1024
#: The lowest quality a frame too large for its record is encoded at before it is given up.
MIN_QUALITY = 10


class FrameEncoder:
    """``encode(image) -> (jpeg bytes, width, height)``; a pure function of its input."""

    def __init__(
        self,
        width: int | None = None,
        quality: int = 80,
        *,
        max_pixels: int = FRAME_MAX_PIXELS,
        max_bytes: int = MAX_JPEG_BYTES,
    ) -> None:
        if width is not None and width < 1:
            msg = "width must be >= 1"
            raise ValueError(msg)
        if not 1 <= quality <= 100:
            msg = "JPEG quality must be within 1..100"
            raise ValueError(msg)
        self.width = width
        self.quality = quality
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self._said: set[str] = set()  # what was logged once

    def size(self, w: int, h: int) -> tuple[int, int]:
        """The output size for a ``w`` x ``h`` input: the target width, within the budget."""
        tw, th = (w, h) if self.width is None else (self.width, max(1, round(h * self.width / w)))
        if tw * th > self.max_pixels:
            scale = math.sqrt(self.max_pixels / (tw * th))
            tw, th = max(1, math.floor(tw * scale)), max(1, math.floor(th * scale))
            self._once("pixels", "frames of %dx%d at width %s would exceed %d pixels: sent as "
                       "%dx%d", w, h, self.width, self.max_pixels, tw, th)  # fmt: skip
        return tw, th

    def resize(self, image: Image) -> Image:
        h, w = image.shape[:2]
        tw, th = self.size(w, h)
        if (tw, th) == (w, h):
            return image
        # INTER_AREA avoids aliasing when shrinking a lot; INTER_LINEAR is ~5x faster otherwise
        interp = cv2.INTER_AREA if tw < w / 2 else cv2.INTER_LINEAR
        out: Image = cv2.resize(image, (tw, th), interpolation=interp)
        return out

    def encode(self, image: Image) -> tuple[bytes, int, int]:
        image = self.resize(image)
        h, w = image.shape[:2]
        quality = self.quality
        while True:
            ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
            if not ok:
                msg = f"JPEG encoding failed for a {image.shape} image"
                raise ValueError(msg)
            if buf.nbytes <= self.max_bytes:
                break
            if quality <= MIN_QUALITY:
                msg = (f"a {w}x{h} frame is {buf.nbytes:,} bytes as JPEG even at quality "
                       f"{quality}, over the {self.max_bytes:,} a frame may have: set a smaller "
                       "width")  # fmt: skip
                raise FrameTooLargeError(msg)
            quality = max(MIN_QUALITY, quality // 2)
        if quality != self.quality:
            self._once("bytes", "%dx%d frames over %d bytes as JPEG at quality %d: sent at "
                       "quality %d", w, h, self.max_bytes, self.quality, quality)  # fmt: skip
        return buf.tobytes(), int(w), int(h)

    def _once(self, what: str, fmt: str, *args: object) -> None:
        if what not in self._said:
            self._said.add(what)
            log.warning(fmt, *args)
