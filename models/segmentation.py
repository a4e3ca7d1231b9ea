"""Segmenters: ``predict_batch(images) -> list[SegmentationOutput]``.

Each image gets a foreground mask at its own resolution, COCO run-length encoded with
``pycocotools`` (counts as a string), and the fraction of the image each class covers.
"""

from __future__ import annotations

import logging
import warnings
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as coco_mask

from streamsense.models.base import SegmentationOutput
from streamsense.models.card import MAX_LABELS, ModelCard
from streamsense.models.exceptions import ModelOutputError, SignatureError
from streamsense.models.imaging import ImageAdapter, check_image_input, normalize, resize
from streamsense.models.runtime import SavedModelRunner, TensorInfo, TFLiteRunner
from streamsense.schemas.results import MAX_MASK_SIDE, RleMask

log = logging.getLogger(__name__)


def encode_mask(mask: np.ndarray) -> RleMask:
    """A boolean ``HxW`` mask as COCO RLE."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    text = counts.decode("ascii") if isinstance(counts, bytes) else str(counts)
    return RleMask(size=(int(rle["size"][0]), int(rle["size"][1])), counts=text)


def decode_mask(rle: RleMask) -> np.ndarray:
    """The boolean ``HxW`` mask of a COCO RLE (for consumers and tests)."""
    raw = {"size": list(rle.size), "counts": rle.counts.encode("ascii")}
    with warnings.catch_warnings():  # pycocotools' Cython __array__ predates NumPy 2
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(coco_mask.decode(raw), dtype=bool)


def _upsample(scores: np.ndarray, width: int, height: int) -> np.ndarray:
    """``h x w x C`` scores -> ``height x width x C`` (bilinear, channels kept)."""
    if scores.shape[0] == height and scores.shape[1] == width:
        return scores
    channels = scores.shape[-1]
    parts = [
        cv2.resize(scores[..., c : c + 4], (width, height), interpolation=cv2.INTER_LINEAR)
        for c in range(0, channels, 4)
    ]
    parts = [p[..., None] if p.ndim == 2 else p for p in parts]
    return np.concatenate(parts, axis=-1)


def upsampled_argmax(scores: np.ndarray, width: int, height: int) -> np.ndarray:
    """The class of each pixel of a ``height x width`` image from ``h x w x C`` scores: the
    argmax of the bilinearly upsampled scores, four channels at a time. Upsampling all of
    them at once took ``height x width x C`` floats: 1.2 GB for a 150-class model on a 1080p
    frame, 41 GB (the worker killed) for a model that emits 5,000 channels."""
    if scores.shape[0] == height and scores.shape[1] == width:
        return np.argmax(scores, axis=-1)
    best: np.ndarray | None = None
    classes = np.zeros((height, width), dtype=np.intp)
    for c in range(0, scores.shape[-1], 4):
        part = _upsample(scores[..., c : c + 4], width, height)
        local = np.argmax(part, axis=-1)
        value = np.take_along_axis(part, local[..., None], axis=-1)[..., 0]
        if best is None:
            best, classes = value, local
            continue
        better = value > best  # ties keep the lower class, as np.argmax does
        best = np.where(better, value, best)
        classes = np.where(better, local + c, classes)
    return classes


def score_problem(scores: np.ndarray) -> str | None:
    """Why a segmenter's scores for one image cannot be a mask (None when they can)."""
    if scores.ndim != 3 or min(scores.shape) < 1:
        return f"has shape {scores.shape}, not [height, width, classes]"
    if max(scores.shape[:2]) > MAX_MASK_SIDE:
        return f"is {scores.shape[1]}x{scores.shape[0]}, over {MAX_MASK_SIDE} pixels a side"
    if scores.shape[2] > MAX_LABELS:
        return f"has {scores.shape[2]} classes, more than the {MAX_LABELS} a model may have"
    if not np.isfinite(scores).all():
        return "has scores that are not finite (NaN or infinite)"
    return None


class Segmenter(ImageAdapter[SegmentationOutput]):
    """Shared checks and mask encoding; subclasses return per-pixel scores."""

    task = "segment"

    def __init__(self, card: ModelCard, artifact: Path) -> None:
        super().__init__(card, artifact)
        self.threshold = card.number_param("threshold", 0.5, 0.0, 1.0)
        # -1: no class is background (every class is foreground in the mask)
        self.background = card.int_param("background_class", 0, -1, MAX_LABELS - 1)

    @abstractmethod
    def _scores(self, images: list[np.ndarray]) -> Sequence[np.ndarray]:
        """One ``h x w x C`` array per image at model resolution: foreground probability
        when C == 1, class logits or probabilities (argmax is taken) otherwise."""

    def _predict_chunk(self, images: list[np.ndarray]) -> list[SegmentationOutput]:
        scores = self._scores(images)
        if len(scores) != len(images):
            msg = f"the model returned {len(scores)} outputs for {len(images)} images"
            raise ModelOutputError(msg)
        out = []
        for i, (img, raw) in enumerate(zip(images, scores, strict=True)):
            h, w = img.shape[:2]
            score = np.asarray(raw, dtype=np.float32)
            if problem := score_problem(score):
                msg = f"image {i}: the model's output {problem}"
                raise ModelOutputError(msg)
            channels = score.shape[-1]
            if channels == 1:
                mask = _upsample(score, w, h)[..., 0] > self.threshold
                areas = {self.card.label(0): float(mask.mean())}
            else:
                classes = upsampled_argmax(score, w, h)
                mask = classes != self.background
                counts = np.bincount(classes.ravel(), minlength=channels) / classes.size
                areas = {
                    self.card.label(c): float(counts[c])
                    for c in range(channels)
                    if c != self.background
                }
            out.append(SegmentationOutput(mask=encode_mask(mask), class_areas=areas))
        return out


class SelfieSegmenter(Segmenter):
    """MediaPipe selfie segmentation (TFLite): stretched 256x256 input in [0, 1], sigmoid
    person probability ``[B, 256, 256, 1]``."""

    def _load(self) -> None:
        self._runner = TFLiteRunner(self.artifact)
        self._h, self._w = self._runner.input.dim(1), self._runner.input.dim(2)

    def _scores(self, images: list[np.ndarray]) -> Sequence[np.ndarray]:
        batch = np.stack([resize(im, self._w, self._h) for im in images])
        (probs,) = self._runner.run(normalize(batch, 0.0, 1.0))
        return list(probs)


def check_segmentation_signature(
    inputs: dict[str, TensorInfo], outputs: dict[str, TensorInfo]
) -> tuple[str, str]:
    """(input key, output key) of a per-pixel logits signature; SignatureError otherwise.

    The input is one ``[batch, height, width, 3]`` image (uint8 or float32); the output is
    the one rank-4 float tensor ``[batch, h, w, classes]`` (named ``logits`` when several).
    """
    check_image_input(inputs)
    rank4 = {k: v for k, v in outputs.items() if len(v.shape) == 4 and v.dtype.startswith("float")}
    if "logits" in rank4:
        key = "logits"
    elif len(rank4) == 1:
        key = next(iter(rank4))
    else:
        shapes = {k: v.shape for k, v in outputs.items()}
        msg = (
            f"not a segmentation model: outputs {shapes}; a segmenter must output one "
            "float tensor [batch, height, width, classes] of per-pixel logits "
            "(name it 'logits' if there are several)"
        )
        raise SignatureError(msg)
    channels = rank4[key].shape[3]
    if channels is not None and channels > MAX_LABELS:
        msg = f"a segmenter may have at most {MAX_LABELS} classes; {key!r} has {channels}"
        raise SignatureError(msg)
    return next(iter(inputs)), key


class LogitsSegmenter(Segmenter):
    """A user's SavedModel with per-pixel class logits ``[B, h, w, C]`` (sigmoid if C == 1).

    The input is fed at the model's fixed size (stretched) or at the image's own size when
    the model allows any size; pixel values are scaled to ``card.input.value_range``.
    """

    def _load(self) -> None:
        self._runner = SavedModelRunner(self.artifact, allow_unsafe_ops=self.card.allow_unsafe_ops)
        self._key, self._out = check_segmentation_signature(
            self._runner.inputs, self._runner.outputs
        )
        spec = self._runner.inputs[self._key]
        self._dtype = spec.dtype
        self._fixed_hw = (spec.dim(1), spec.dim(2)) if None not in spec.shape[1:3] else None
        if spec.shape[0] is not None:
            self.max_batch = min(self.max_batch, spec.dim(0))
        self._range = self.card.input.value_range or (0.0, 255.0)

    def _scores(self, images: list[np.ndarray]) -> Sequence[np.ndarray]:
        if self._fixed_hw is None and len({im.shape for im in images}) > 1:
            return [self._scores([im])[0] for im in images]  # one call per image size
        if self._fixed_hw is not None:
            h, w = self._fixed_hw
            batch = np.stack([resize(im, w, h) for im in images])
        else:
            batch = np.stack(images)
        feed = batch if self._dtype == "uint8" else normalize(batch, *self._range)
        logits = self._runner.run(**{self._key: feed})[self._out].astype(np.float32)
        if logits.ndim == 4 and logits.shape[-1] == 1:  # float32-safe sigmoid; NaN stays NaN
            return list(1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0))))
        return list(logits)
