"""The one decompression guard: every decoder of untrusted image bytes in the product goes
through :func:`check_image` before :func:`decode_image` (workers, sink thumbnails, the
image-folder source, anything the gateway serves).

:func:`check_image` reads the dimensions from the format's own header (JPEG SOF marker, PNG
IHDR chunk) and refuses, before a single pixel is decoded: bytes over the size limit, bytes
that are not the declared format, a truncated file (no end marker) and dimensions over the
pixel budget, and more pixels than the bytes can describe (:data:`MAX_PIXELS_PER_BYTE`). A 1 KB
JPEG that declares 60000x60000 pixels is refused in microseconds instead of allocating 10 GB,
and so is one that declares 8192x8192, within the budget (400 MB). When the caller needs far
fewer pixels than the image has, libjpeg decodes at 1/2, 1/4 or 1/8 scale
(``IMREAD_REDUCED_COLOR_*``), several times faster than a full decode plus resize.
"""

from __future__ import annotations

import struct
from typing import Literal, NamedTuple

import cv2
import numpy as np

from streamsense.models.exceptions import BadImageError

Encoding = Literal["jpeg", "png"]

#: libjpeg's reduced decodes, largest first.
REDUCED: tuple[tuple[int, int], ...] = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
#: Baseline, extended and progressive Huffman-coded JPEG: what cameras and encoders write. The
#: others (lossless, hierarchical, arithmetic-coded) are refused: nobody sends them, and
#: arithmetic coding would defeat the density bound below.
_HUFFMAN_SOF = {0xC0, 0xC1, 0xC2}
#: Most pixels one byte can describe. Huffman-coded JPEG spends at least one bit per 8x8 block
#: (a DC code; baseline two: DC and end-of-block), so a complete image has at least one byte
#: per 512 pixels; the most compact real files measured have 256 (all-black, optimised
#: Huffman tables). A 3 KB file that declares 8192x8192 is a decompression bomb: libjpeg would
#: allocate ~400 MB (full decode, or progressive coefficients even at 1/8 scale) and fill it
#: with zeros. PNG's deflate compresses at most ~1032:1 and a pixel takes at least 1/8 byte
#: (1-bit), so ~8,256 pixels per byte. Both bounds are doubled as a margin.
MAX_PIXELS_PER_BYTE: dict[Encoding, int] = {"jpeg": 1024, "png": 16_512}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"


class ImageInfo(NamedTuple):
    encoding: Encoding
    width: int
    height: int


def sniff_encoding(data: bytes) -> Encoding | None:
    """The format ``data`` starts with (JPEG or PNG), or None: for files, which carry no
    declared encoding. The decoder must then be told that format, never guess on its own."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == _PNG_SIGNATURE:
        return "png"
    return None


def jpeg_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the first SOF marker; BadImageError when there is none."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        msg = "not a JPEG (no SOI marker)"
        raise BadImageError(msg)
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            msg = f"corrupt JPEG: expected a marker at byte {i}"
            raise BadImageError(msg)
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            if marker not in _HUFFMAN_SOF:
                msg = (
                    f"unsupported JPEG coding (SOF marker 0x{marker:X}): only baseline and "
                    "progressive Huffman-coded JPEG is decoded"
                )
                raise BadImageError(msg)
            if i + 9 > n:
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker == 0xDA or length < 2:  # start of scan before any SOF: corrupt
            break
        i += 2 + length
    msg = "corrupt JPEG: no frame header (SOF) found"
    raise BadImageError(msg)


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the IHDR chunk; BadImageError for anything else."""
    if data[:8] != _PNG_SIGNATURE:
        msg = "not a PNG (no PNG signature)"
        raise BadImageError(msg)
    if len(data) < 24 or data[12:16] != b"IHDR":
        msg = "corrupt PNG: no IHDR chunk"
        raise BadImageError(msg)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_image(
    data: bytes | None, *, encoding: str = "jpeg", max_bytes: int, max_pixels: int
) -> ImageInfo:
    """Everything that can be known about ``data`` without decoding it; BadImageError when it
    is empty, too large, not ``encoding``, truncated, zero-sized or over the pixel budget."""
    if not data:
        msg = "image has no bytes"
        raise BadImageError(msg)
    if len(data) > max_bytes:
        msg = f"image of {len(data)} bytes exceeds the {max_bytes}-byte limit"
        raise BadImageError(msg)
    enc: Encoding
    if encoding == "jpeg":
        enc = "jpeg"
        width, height = jpeg_size(data)
        if data.rstrip(b"\0")[-2:] != b"\xff\xd9":
            msg = "truncated JPEG (no end-of-image marker)"
            raise BadImageError(msg)
    elif encoding == "png":
        enc = "png"
        width, height = png_size(data)
        if not data.endswith(_PNG_END):
            msg = "truncated PNG (no IEND chunk)"
            raise BadImageError(msg)
    else:
        msg = f"unsupported image encoding {encoding!r} (jpeg or png)"
        raise BadImageError(msg)
    if width < 1 or height < 1:
        msg = f"{encoding.upper()} declares an empty image ({width}x{height})"
        raise BadImageError(msg)
    if width * height > max_pixels:
        msg = f"{encoding.upper()} declares {width}x{height}, over the {max_pixels}-pixel limit"
        raise BadImageError(msg)
    if width * height > MAX_PIXELS_PER_BYTE[enc] * len(data):
        msg = (
            f"{encoding.upper()} declares {width}x{height} in only {len(data)} bytes: "
            "a decompression bomb or a cut-off image"
        )
        raise BadImageError(msg)
    return ImageInfo(enc, width, height)


def reduction_for(
    width: int, height: int, need_side: int | None, need_width: int | None = None
) -> int:
    """Largest libjpeg scale (1, 2, 4, 8) that keeps the short side >= ``need_side`` and the
    width >= ``need_width``."""
    if not need_side and not need_width:
        return 1
    for factor, _flag in REDUCED:
        if min(width, height) // factor >= (need_side or 0) and width // factor >= (
            need_width or 0
        ):
            return factor
    return 1


def decode_image(
    data: bytes,
    info: ImageInfo,
    *,
    need_side: int | None = None,
    need_width: int | None = None,
    rgb: bool = True,
) -> np.ndarray:
    """Decode bytes that passed :func:`check_image`, reduced when the caller needs fewer
    pixels; RGB (or OpenCV's BGR) ``uint8``. BadImageError when the codec refuses them."""
    factor = 1
    if info.encoding == "jpeg":
        factor = reduction_for(info.width, info.height, need_side, need_width)
    flag = dict(REDUCED).get(factor, cv2.IMREAD_COLOR)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if img is None:
        msg = f"corrupt {info.encoding.upper()}: OpenCV could not decode it"
        raise BadImageError(msg)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if rgb else img
