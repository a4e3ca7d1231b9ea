"""Object and face detectors: ``predict_batch(images) -> list[list[DetectionOutput]]``.

Images are RGB ``uint8`` ``HxWx3`` of any size. Every detector produces candidate boxes in
coordinates normalized to the source image, then shares one post-processing step: class-wise
non-maximum suppression (``tf.image.non_max_suppression``) after a score threshold,
after which boxes are reported normalized and in source pixels.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamsense.models.base import BoxXYXY, DetectionOutput
from streamsense.models.card import MAX_LABELS, ModelCard
from streamsense.models.exceptions import ModelOutputError, SignatureError
from streamsense.models.imaging import (
    ImageAdapter,
    Letterbox,
    check_image_input,
    letterbox,
    normalize,
    resize,
)
from streamsense.models.runtime import SavedModelRunner, TensorInfo, TFLiteRunner

log = logging.getLogger(__name__)

#: Most detections one result may list (a card's ``max_detections``).
MAX_DETECTIONS = 1000
#: Largest class id a detector may emit (the most labels a card may have, less one).
MAX_CLASS_ID = MAX_LABELS - 1
#: How far over 1 a score may be (float rounding in a sigmoid or softmax) before the output
#: is refused as not a probability.
SCORE_TOLERANCE = 1e-3
#: Outputs a TF2 Object Detection API SavedModel must have.
TFOD_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes")


def nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, top: int
) -> np.ndarray:
    """Indices kept by class-wise non-maximum suppression, best first.

    One ``tf.image.non_max_suppression`` call (an eager op, ~50 us; a ``tf.function`` around
    ``combined_non_max_suppression`` costs ~1.5 ms a call): each class is shifted by
    ``2 * class`` so boxes of different classes never overlap (boxes are normalized).
    """
    import tensorflow as tf

    shifted = boxes + classes[:, None].astype(np.float32) * 2.0
    keep = tf.image.non_max_suppression(shifted, scores, top, iou_threshold=iou)
    return np.asarray(keep.numpy())


class Detector(ImageAdapter[list[DetectionOutput]]):
    """Shared checks and post-processing; subclasses implement :meth:`_candidates`."""

    task = "detect"

    def __init__(self, card: ModelCard, artifact: Path) -> None:
        super().__init__(card, artifact)
        self.score_threshold = card.number_param("score_threshold", 0.3, 0.0, 1.0)
        self.iou_threshold = card.number_param("iou_threshold", 0.5, 0.0, 1.0)
        self.max_detections = card.int_param("max_detections", 100, 1, MAX_DETECTIONS)

    @abstractmethod
    def _candidates(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``boxes [B,N,4]`` normalized xyxy in each source image, ``scores [B,N]``,
        ``classes [B,N]`` as the model emits them (checked in :meth:`_detections`)."""

    def _predict_chunk(self, images: list[np.ndarray]) -> list[list[DetectionOutput]]:
        boxes, scores, classes = self._candidates(images)
        return [
            self._detections(boxes[b], scores[b], classes[b], img.shape[1], img.shape[0])
            for b, img in enumerate(images)
        ]

    def _detections(
        self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, w: int, h: int
    ) -> list[DetectionOutput]:
        """The detections above the score threshold after NMS; ModelOutputError when the
        model's output cannot be published as detections (see :func:`output_problem`)."""
        with np.errstate(invalid="ignore"):
            candidates = np.flatnonzero(scores >= self.score_threshold)
        problem = output_problem(scores, boxes[candidates], scores[candidates], classes[candidates])
        if problem is not None:
            msg = f"the model's output {problem}"
            raise ModelOutputError(msg)
        if candidates.size == 0:
            return []
        # inverted or out-of-frame corners: the box they span, inside the frame
        corners = np.clip(boxes[candidates], 0.0, 1.0).astype(np.float32)
        boxes = np.concatenate(
            [
                np.minimum(corners[:, :2], corners[:, 2:]),
                np.maximum(corners[:, :2], corners[:, 2:]),
            ],
            axis=1,
        )
        scores = np.minimum(scores[candidates], 1.0).astype(np.float32)
        classes = np.rint(classes[candidates]).astype(np.int64)
        found = []
        for k in nms(boxes, scores, classes, self.iou_threshold, self.max_detections):
            x1, y1, x2, y2 = (float(v) for v in boxes[k])
            class_id = int(classes[k])
            found.append(
                DetectionOutput(
                    self.card.label(class_id), class_id, float(scores[k]),
                    BoxXYXY(x1, y1, x2, y2), w, h,
                )
            )  # fmt: skip
        return found


def output_problem(
    scores: np.ndarray, boxes: np.ndarray, kept: np.ndarray, classes: np.ndarray
) -> str | None:
    """Why a detector's output for one image is not detections (None when it is): a score
    that is not finite anywhere, or, among the detections above the threshold, a score over
    1, a corner that is not finite, or a class id that is not an integer from 0 to
    :data:`MAX_CLASS_ID` (``class_nan`` or a wrapped-around ``class_-2147483648`` would be
    published as if the model had meant it)."""
    if not np.isfinite(scores).all():
        return "has scores that are not finite (NaN or infinite)"
    if kept.size and kept.max() > 1.0 + SCORE_TOLERANCE:
        return f"has a score of {float(kept.max()):g}, over 1: scores must be probabilities"
    if not np.isfinite(boxes).all():
        return "has a box whose corners are not finite (NaN or infinite)"
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(classes) & (np.abs(classes - np.rint(classes)) <= 1e-3)
        in_range = (classes >= 0) & (classes <= MAX_CLASS_ID)
    if not (integral & in_range).all():
        bad = classes[~(integral & in_range)][0]
        return f"has a class id of {float(bad):g}: class ids are integers from 0 to {MAX_CLASS_ID}"
    return None


def blazeface_anchors(size: int = 128, strides: Sequence[int] = (8, 16, 16, 16)) -> np.ndarray:
    """SSD anchor centres ``[N, 2]`` (x, y normalized) as MediaPipe's SsdAnchorsCalculator
    makes them for BlazeFace: 2 anchors per cell per layer, layers of equal stride merged
    (short range: 16x16x2 + 8x8x6 = 896)."""
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        per_cell = 0
        while layer < len(strides) and strides[layer] == stride:
            per_cell += 2
            layer += 1
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


class BlazeFaceDetector(Detector):
    """MediaPipe BlazeFace short range (TFLite): letterboxed 128x128 input in [-1, 1]."""

    def _load(self) -> None:
        self._runner = TFLiteRunner(self.artifact)
        self._size = self._runner.input.dim(1)
        self._anchors = blazeface_anchors(self._size)
        # Per image: stride-8 anchors first, then the stride-16 ones (for batch regrouping).
        self._first_block = (self._size // 8) ** 2 * 2

    def _candidates(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxed: list[tuple[np.ndarray, Letterbox]] = [letterbox(im, self._size) for im in images]
        batch = normalize(np.stack([c for c, _ in boxed]), -1.0, 1.0)
        regressors, logits = self._runner.run(batch)
        b, n = len(images), len(self._anchors)
        regressors = self._regroup(regressors.reshape(-1, regressors.shape[-1]), b)
        logits = self._regroup(logits.reshape(-1, 1), b)[..., 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))  # float32-safe
        centre = regressors[..., 0:2] / self._size + self._anchors
        half = regressors[..., 2:4] / self._size / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=-1)
        for i, (img, (_, lb)) in enumerate(zip(images, boxed, strict=True)):
            boxes[i] = lb.to_source(boxes[i], img.shape[1], img.shape[0])
        return boxes, scores, np.zeros((b, n), dtype=np.int32)

    def _regroup(self, flat: np.ndarray, batch: int) -> np.ndarray:
        """``[B*N, C]`` as LiteRT returns a batch (all images' stride-8 anchors, then all
        images' stride-16 anchors) -> ``[B, N, C]``."""
        first = flat[: batch * self._first_block].reshape(batch, self._first_block, -1)
        rest = flat[batch * self._first_block :].reshape(batch, -1, flat.shape[-1])
        return np.concatenate([first, rest], axis=1)


class CenterNetDetector(Detector):
    """CenterNet MobileNetV3 converted from TF.js, as a SavedModel (TensorFlow, any batch)
    or a ``.tflite`` (LiteRT: fastest on CPU at batch 1). Stretched 512x512 RGB 0-255 input;
    output ``detections [B, 100, 6]`` = x1, y1, x2, y2 (input pixels), score, class."""

    def _load(self) -> None:
        if self.card.format == "tflite":
            self._lite: TFLiteRunner | None = TFLiteRunner(self.artifact)
            self._size = self._lite.input.dim(1)
            return
        self._lite = None
        self._runner = SavedModelRunner(self.artifact, allow_unsafe_ops=self.card.allow_unsafe_ops)
        ((self._key, spec),) = self._runner.inputs.items()
        self._size = spec.dim(1)

    def _candidates(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batch = np.stack([resize(im, self._size, self._size) for im in images])
        if self._lite is not None:
            (out,) = self._lite.run(batch.astype(np.float32))
        else:
            out = self._runner.run(**{self._key: batch.astype(np.float32)})["detections"]
        boxes = np.clip(out[..., :4] / self._size, 0.0, 1.0)
        return boxes, out[..., 4], out[..., 5]


def check_detection_signature(inputs: dict[str, TensorInfo], outputs: dict[str, Any]) -> str:
    """The image input's key of a TF Object Detection API signature; SignatureError if the
    signature is not one (one rank-4 image input, the three ``detection_*`` outputs)."""
    missing = [name for name in TFOD_OUTPUTS if name not in outputs]
    if missing:
        msg = (
            f"not a TF Object Detection API detector: outputs {sorted(outputs)} lack "
            f"{missing}; a detector must output {', '.join(TFOD_OUTPUTS)}"
        )
        raise SignatureError(msg)
    check_image_input(inputs)
    return next(iter(inputs))


class ObjectDetectionAPIDetector(Detector):
    """A user's TF2 Object Detection API SavedModel (``detection_boxes`` normalized ymin,
    xmin, ymax, xmax; ``detection_scores``; ``detection_classes``; optional
    ``num_detections``). Images are fed at their own size when the input allows it."""

    def _load(self) -> None:
        self._runner = SavedModelRunner(self.artifact, allow_unsafe_ops=self.card.allow_unsafe_ops)
        self._key = check_detection_signature(self._runner.inputs, self._runner.outputs)
        spec = self._runner.inputs[self._key]
        self._dtype = spec.dtype
        self._range = self.card.input.value_range or (0.0, 255.0)
        self._fixed_hw = (spec.dim(1), spec.dim(2)) if None not in spec.shape[1:3] else None
        if spec.shape[0] is not None:
            self.max_batch = min(self.max_batch, spec.dim(0))

    def _candidates(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._fixed_hw is not None:
            h, w = self._fixed_hw
            groups = [np.stack([resize(im, w, h) for im in images])]
        elif len({im.shape for im in images}) == 1:
            groups = [np.stack(images)]
        else:  # free spatial size but different image sizes: one call per image
            groups = [im[None] for im in images]
        parts = [self._run(g) for g in groups]
        width = max(p[0].shape[1] for p in parts)
        boxes, scores, classes = ([_pad(p[i], width) for p in parts] for i in range(3))
        return np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feed = batch if self._dtype == "uint8" else normalize(batch, *self._range)
        out = self._runner.run(**{self._key: feed})
        yxyx = out["detection_boxes"].astype(np.float32)
        scores = out["detection_scores"].astype(np.float32)
        classes = out["detection_classes"].astype(np.float32)
        if "num_detections" in out:
            keep = np.arange(scores.shape[1])[None, :] < out["num_detections"].reshape(-1, 1)
            scores = np.where(keep, scores, 0.0)
        return yxyx[..., [1, 0, 3, 2]], scores, classes


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    if a.shape[1] == width:
        return a
    pad = [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, pad)
