"""Image checks and the resizing every image adapter shares (numpy + OpenCV)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from streamsense.models.base import ModelAdapter, Out
from streamsense.models.exceptions import BadInputError, SignatureError
from streamsense.models.runtime import TensorInfo

MAX_SIDE = 16384


class ImageAdapter(ModelAdapter[np.ndarray, Out]):
    """An adapter whose inputs are RGB images of any size (detectors, segmenters)."""

    def _check(self, items: Sequence[np.ndarray]) -> list[np.ndarray]:
        return check_images(items)

    def sample_input(self) -> np.ndarray:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)


def check_images(items: Sequence[Any]) -> list[np.ndarray]:
    """RGB ``uint8`` arrays of shape ``HxWx3`` with H, W >= 1; BadInputError otherwise."""
    out = []
    for i, img in enumerate(items):
        if not isinstance(img, np.ndarray):
            msg = f"image {i}: expected a numpy array, got {type(img).__name__}"
            raise BadInputError(msg)
        if img.dtype != np.uint8:
            msg = f"image {i}: expected dtype uint8, got {img.dtype}"
            raise BadInputError(msg)
        if img.ndim != 3 or img.shape[2] != 3:
            msg = f"image {i}: expected shape HxWx3 (RGB), got {img.shape}"
            raise BadInputError(msg)
        if min(img.shape[:2]) < 1 or max(img.shape[:2]) > MAX_SIDE:
            msg = f"image {i}: unusable size {img.shape[1]}x{img.shape[0]}"
            raise BadInputError(msg)
        out.append(img)
    return out


def resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    if img.shape[1] == width and img.shape[0] == height:
        return img
    shrink = img.shape[1] > 2 * width or img.shape[0] > 2 * height
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else 1)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Where a source image sits inside a square model input (all in model pixels)."""

    scale: float
    pad_x: float
    pad_y: float
    size: int

    def to_source(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """Normalized xyxy boxes in the model input -> normalized xyxy in the source image."""
        out = boxes.astype(np.float32, copy=True)
        out[..., 0::2] = (out[..., 0::2] * self.size - self.pad_x) / (self.scale * width)
        out[..., 1::2] = (out[..., 1::2] * self.size - self.pad_y) / (self.scale * height)
        return out


def letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """``img`` scaled to fit a ``size`` square, centred, padded with zeros."""
    h, w = img.shape[:2]
    scale = min(size / w, size / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resize(img, new_w, new_h)
    return canvas, Letterbox(scale, float(pad_x), float(pad_y), size)


def normalize(batch: np.ndarray, low: float, high: float) -> np.ndarray:
    """uint8 ``[0, 255]`` -> float32 ``[low, high]``."""
    scale = np.float32((high - low) / 255.0)
    out = batch.astype(np.float32)
    out *= scale
    if low:
        out += np.float32(low)
    return out


def check_image_input(inputs: dict[str, TensorInfo]) -> None:
    """SignatureError unless a signature has one ``[batch, height, width, 3]`` uint8 or
    float32 input."""
    if len(inputs) != 1:
        msg = f"expected one image input, the signature has {sorted(inputs)}"
        raise SignatureError(msg)
    spec = next(iter(inputs.values()))
    if len(spec.shape) != 4 or spec.shape[3] not in (3, None):
        msg = f"image input {spec.name!r} must be [batch, height, width, 3], got {spec.shape}"
        raise SignatureError(msg)
    if spec.dtype not in ("uint8", "float32"):
        msg = f"image input {spec.name!r} must be uint8 or float32, got {spec.dtype}"
        raise SignatureError(msg)
