"""Fixtures for the models layer: the default zoo (built once) and tiny user SavedModels.

The zoo is built by calling ``fetch_zoo`` directly into a store under
``$STREAMSENSE_TEST_MODEL_STORE`` (default ``~/.cache/streamsense/test-models``); downloads
are cached in ``~/.cache/streamsense/downloads``. A second session finds everything in place
and only verifies checksums.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from streamsense.models.store import ModelStore
from streamsense.models.zoo.fetch import fetch_zoo
from streamsense.services.settings import StreamsenseSettings


def _zoo_root() -> Path:
    configured = os.environ.get("STREAMSENSE_TEST_MODEL_STORE")
    return Path(configured) if configured else Path.home() / ".cache/streamsense/test-models"


@pytest.fixture(scope="session")
def downloads() -> Path:
    return StreamsenseSettings().home / "downloads"


@pytest.fixture(scope="session")
def zoo_store(downloads: Path) -> ModelStore:
    store = ModelStore(_zoo_root())
    fetch_zoo(store, downloads, progress=False)
    return store


@pytest.fixture(scope="session")
def zoo_adapters(zoo_store: ModelStore) -> dict[str, object]:
    """Loaded (and warmed) zoo adapters, shared by the session's tests."""
    adapters = {}
    for name in zoo_store.list():
        adapter = zoo_store.load(name)
        adapter.warmup()
        adapters[name] = adapter
    return adapters


# -- tiny user models, exported in the test session ----------------------------------------


def red_square_image(h: int, w: int, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """A gray image with an optional pure red rectangle ``box = (x1, y1, x2, y2)`` (pixels,
    x2/y2 exclusive)."""
    img = np.full((h, w, 3), 128, dtype=np.uint8)
    if box is not None:
        x1, y1, x2, y2 = box
        img[y1:y2, x1:x2] = (255, 0, 0)
    return img


class RedSquareDetector(tf.Module):
    """A TF2 Object Detection API-shaped detector that finds the box around red pixels
    (class 1, score 0.9) and emits a zero-score padding detection."""

    def __init__(self) -> None:
        super().__init__()
        self.threshold = tf.Variable(200, dtype=tf.int32)

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")]
    )
    def __call__(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        x = tf.cast(images, tf.int32)
        red = (x[..., 0] > self.threshold) & (x[..., 1] < 60) & (x[..., 2] < 60)
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        rows, cols = tf.reduce_any(red, axis=2), tf.reduce_any(red, axis=1)

        def span(hit: tf.Tensor, n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            idx = tf.range(n)[None, :]
            first = tf.reduce_min(tf.where(hit, idx, n), axis=1)
            last = tf.reduce_max(tf.where(hit, idx, -1), axis=1) + 1
            return tf.cast(first, tf.float32), tf.cast(last, tf.float32)

        y1, y2 = span(rows, h)
        x1, x2 = span(cols, w)
        hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
        box = tf.stack([y1 / hf, x1 / wf, y2 / hf, x2 / wf], axis=-1)
        found = tf.reduce_any(red, axis=[1, 2])
        box = tf.where(found[:, None], box, tf.zeros_like(box))
        batch = tf.shape(x)[0]
        score = tf.where(found, 0.9, 0.0)
        return {
            "detection_boxes": tf.stack([box, tf.zeros_like(box)], axis=1),
            "detection_scores": tf.stack([score, tf.zeros_like(score)], axis=1),
            "detection_classes": tf.ones([batch, 2], tf.float32),
            "num_detections": tf.cast(found, tf.float32) * 2.0,
        }


class FixedSizeRedDetector(RedSquareDetector):
    """The same detector exported the way many TF OD API models are: batch 1, a fixed
    96x96 float input in [0, 1]."""

    @tf.function(input_signature=[tf.TensorSpec([1, 96, 96, 3], tf.float32, name="images")])
    def detect(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        return self(tf.cast(tf.round(images * 255.0), tf.uint8))


class ColourSegmenter(tf.Module):
    """Per-pixel logits ``[B, 32, 32, 3]`` (background, red, blue) for a fixed 64x64 float
    input in [0, 1]: a segmentation SavedModel at half the input resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = tf.Variable(10.0)

    @tf.function(input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.float32, name="image")])
    def __call__(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        small = tf.nn.avg_pool2d(image, 2, 2, "VALID")
        r, g, b = small[..., 0], small[..., 1], small[..., 2]
        red = self.gain * (r - tf.maximum(g, b)) - 3.0
        blue = self.gain * (b - tf.maximum(r, g)) - 3.0
        return {"logits": tf.stack([tf.zeros_like(red), red, blue], axis=-1)}


class NotADetector(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def __call__(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"scores": tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2])}


def _export(module: tf.Module, path: Path, signature: object = None) -> Path:
    serving = signature if signature is not None else module.__call__
    tf.saved_model.save(module, str(path), signatures={"serving_default": serving})
    return path


@pytest.fixture(scope="session")
def user_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(RedSquareDetector(), tmp_path_factory.mktemp("user") / "detector")


@pytest.fixture(scope="session")
def user_fixed_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    module = FixedSizeRedDetector()
    return _export(module, tmp_path_factory.mktemp("user") / "fixed-detector", module.detect)


@pytest.fixture(scope="session")
def user_segmenter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(ColourSegmenter(), tmp_path_factory.mktemp("user") / "segmenter")


@pytest.fixture(scope="session")
def wrong_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(NotADetector(), tmp_path_factory.mktemp("user") / "wrong")


@pytest.fixture(scope="session")
def user_store(
    tmp_path_factory: pytest.TempPathFactory,
    user_detector: Path,
    user_fixed_detector: Path,
    user_segmenter: Path,
) -> ModelStore:
    """A store holding the user models, registered the way the CLI does it."""
    from streamsense.models.register import register_saved_model

    store = ModelStore(tmp_path_factory.mktemp("user-store"))
    register_saved_model(
        store,
        user_detector,
        name="red-detector",
        task="detect",
        labels=["background", "red square"],
    )
    register_saved_model(
        store,
        user_fixed_detector,
        name="red-detector-fixed",
        task="detect",
        labels=["background", "red square"],
        value_range=(0.0, 1.0),
    )
    register_saved_model(
        store,
        user_segmenter,
        name="colour-segmenter",
        task="segment",
        labels=["background", "red", "blue"],
        value_range=(0.0, 1.0),
    )
    return store


@pytest.fixture(scope="session")
def red_image():
    """``red_image(h, w, box)``: a gray image with a red rectangle (see red_square_image)."""
    return red_square_image
