"""Models whose outputs or cards are hostile: every one gives valid results or refuses with the
reason (ModelOutputError: the worker dead-letters that input; ModelIntegrityError or
SignatureError: the version is not served, the previous one is).

The models are tiny SavedModels exported in the test and registered in a real store. Before:
an inverted box was published inverted; an infinite score as 1.0; a NaN, negative or huge class
id as class 0 (a wrapped-around cast, then clamped); a NaN segmentation as an empty mask; a
segmenter's scores were upsampled all classes at once (41 GB for 5,000 classes on a 1080p frame:
the worker was killed); a card parameter that is not a number crashed the worker's start with
a ValueError, and one out of range (an IoU of 7) failed inside TensorFlow on every image with a
detection but not on the warmup's, so a green worker dead-lettered them all.
"""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from streamsense.models.exceptions import ModelIntegrityError, ModelOutputError, SignatureError
from streamsense.models.register import register_saved_model
from streamsense.models.segmentation import _upsample, decode_mask, upsampled_argmax
from streamsense.models.store import ModelStore
from streamsense.schemas.results import Detection

pytestmark = pytest.mark.models

INF, NAN = float("inf"), float("nan")


def _detector(
    path: Path, boxes: list[list[float]], scores: list[float], classes: list[float]
) -> Path:
    """A TF OD API-shaped detector that emits these detections (ymin, xmin, ymax, xmax) for
    every image, after one real detection."""
    fixed = {
        "detection_boxes": [[0.1, 0.1, 0.3, 0.3], *boxes],
        "detection_scores": [0.8, *scores],
        "detection_classes": [1.0, *classes],
    }

    class Detector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        def __call__(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            n = tf.shape(images)[0]
            return {
                k: tf.tile(tf.constant(v, tf.float32)[None], [n] + [1] * np.ndim(v))
                for k, v in fixed.items()
            }

    module = Detector()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return path


def _segmenter(path: Path, channels: int, fill: float | None = None, size: int = 8) -> Path:
    """A segmenter of a fixed 32x32 input emitting ``size x size x channels`` scores (random,
    or ``fill``)."""

    class Segmenter(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        def __call__(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
            shape = [tf.shape(image)[0], size, size, channels]
            if fill is None:
                return {"logits": tf.random.stateless_uniform(shape, seed=(3, 4))}
            return {"logits": tf.fill(shape, fill)}

    module = Segmenter()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return path


def _register(tmp_path: Path, model: Path, task: str, **kw: Any) -> ModelStore:
    store = ModelStore(tmp_path / "store")
    register_saved_model(store, model, name="m", task=task, version="1", **kw)  # type: ignore[arg-type]
    return store


IMAGE = np.zeros((48, 64, 3), np.uint8)


@pytest.mark.parametrize(
    ("boxes", "scores", "classes", "expected"),
    [
        ([[0.8, 0.9, 0.2, 0.1]], [0.9], [2], (0.1, 0.2, 0.9, 0.8)),  # inverted: the box it spans
        ([[-3, -2, 7, 9]], [0.9], [2], (0.0, 0.0, 1.0, 1.0)),  # out of the frame: clipped
        ([[0.5, 0.5, 0.5, 0.5]], [0.9], [2], (0.5, 0.5, 0.5, 0.5)),  # empty, yet a valid box
        ([[0.5, 0.5, 0.6, 0.6]], [0.9], [2.0004], (0.5, 0.5, 0.6, 0.6)),  # float32 class ids
    ],
)
def test_odd_boxes_become_valid_detections(
    tmp_path: Path, boxes: list[list[float]], scores: list[float], classes: list[float],
    expected: tuple[float, ...],
) -> None:  # fmt: skip
    store = _register(tmp_path, _detector(tmp_path / "d", boxes, scores, classes), "detect",
                      labels=["bg", "person", "cup"])  # fmt: skip
    [found] = store.load("m").predict_batch([IMAGE])
    assert len(found) == 2
    odd = next(d for d in found if d.class_id == 2)
    assert odd.label == "cup"
    assert tuple(odd.box) == pytest.approx(expected, abs=1e-6)
    for d in found:
        Detection.model_validate(d.to_dict(640, 480))  # the worker's wire form


@pytest.mark.parametrize(
    ("boxes", "scores", "classes", "why"),
    [
        ([[0.1, 0.1, 0.5, 0.5]], [INF], [1], "scores that are not finite"),
        ([[0.1, 0.1, 0.5, 0.5]], [NAN], [1], "scores that are not finite"),
        ([[0.1, 0.1, 0.5, 0.5]], [7.5], [1], "a score of 7.5, over 1"),
        ([[NAN, 0.1, 0.5, 0.5]], [0.9], [1], "corners are not finite"),
        ([[0.1, 0.1, INF, 0.5]], [0.9], [1], "corners are not finite"),
        ([[0.1, 0.1, 0.5, 0.5]], [0.9], [NAN], "class id of nan"),
        ([[0.1, 0.1, 0.5, 0.5]], [0.9], [-7], "class id of -7"),
        ([[0.1, 0.1, 0.5, 0.5]], [0.9], [1e30], "class id of 1e+30"),
        ([[0.1, 0.1, 0.5, 0.5]], [0.9], [1.5], "class id of 1.5"),
    ],
)
def test_detector_outputs_that_are_not_detections_refuse_the_input_with_the_reason(
    tmp_path: Path, boxes: list[list[float]], scores: list[float], classes: list[float], why: str
) -> None:
    path = _detector(tmp_path / "d", boxes, scores, classes)
    # registering runs the model once on a sample image: it refuses the same way
    with pytest.raises(ModelOutputError, match=re.escape(why)):
        _register(tmp_path, path, "detect")
    store = ModelStore(tmp_path / "store")
    register_saved_model(store, _detector(tmp_path / "ok", [], [], []), name="m", task="detect",
                         version="1")  # fmt: skip
    card = store.card("m", "1")
    adapter = type(store.load("m"))(card, path)  # the hostile graph behind a valid card
    adapter.load()
    with pytest.raises(ModelOutputError, match=re.escape(why)):
        adapter.predict_batch([IMAGE])


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"score_threshold": "high"}, "'score_threshold' must be a number from 0 to 1, got a str"),
        ({"score_threshold": -5}, "'score_threshold' must be a number from 0 to 1, got -5"),
        ({"score_threshold": NAN}, "'score_threshold' must be a number from 0 to 1, got nan"),
        ({"score_threshold": True}, "'score_threshold' must be a number"),
        ({"iou_threshold": 7}, "'iou_threshold' must be a number from 0 to 1, got 7"),
        ({"max_detections": -3}, "'max_detections' must be a number from 1 to 1000"),
        ({"max_detections": 2.5}, "'max_detections' must be an integer"),
        ({"max_detections": 10**12}, "'max_detections' must be a number from 1 to 1000"),
    ],
)
def test_cards_with_unusable_parameters_are_not_served_and_the_previous_version_is(
    tmp_path: Path, params: dict[str, Any], why: str
) -> None:
    store = _register(tmp_path, _detector(tmp_path / "d", [], [], []), "detect")
    register_saved_model(store, tmp_path / "d", name="m", task="detect", version="2")
    path = store.root / "m" / "2" / "card.json"
    card = json.loads(path.read_text())
    card["params"].update(params)
    path.write_text(json.dumps(card))
    with pytest.raises(ModelIntegrityError, match=why):
        store.load("m", "2")
    store.set_champion("m", "2")
    adapter, fallback = store.load_serving("m")
    assert adapter.version == "1" and fallback is not None and why.split(" must")[0] in fallback


def test_segmenter_parameters_are_checked_too(tmp_path: Path) -> None:
    store = _register(tmp_path, _segmenter(tmp_path / "s", 3), "segment")
    path = store.root / "m" / "1" / "card.json"
    good = json.loads(path.read_text())
    cases = [
        ({"threshold": 2}, "'threshold' must be a number from 0 to 1"),
        ({"background_class": "sky"}, "'background_class' must be a number"),
    ]
    for params, why in cases:
        path.write_text(json.dumps({**good, "params": {**good["params"], **params}}))
        with pytest.raises(ModelIntegrityError, match=why):
            store.load("m", "1")


def test_a_segmenter_emitting_nan_refuses_the_input_instead_of_an_empty_mask(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        ModelOutputError, match="image 0: the model's output has scores that are not finite"
    ):
        _register(tmp_path, _segmenter(tmp_path / "s", 3, fill=NAN), "segment")
    with pytest.raises(ModelOutputError, match="not finite"):
        _register(tmp_path, _segmenter(tmp_path / "s1", 1, fill=NAN), "segment")


def test_a_segmenter_with_more_classes_than_a_card_may_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="at most 10000 classes"):
        _register(tmp_path, _segmenter(tmp_path / "s", 10_001, size=1), "segment")


def test_many_classes_are_upsampled_in_bounded_memory_with_the_same_classes(
    tmp_path: Path,
) -> None:
    store = _register(tmp_path, _segmenter(tmp_path / "s", 64), "segment")
    adapter = store.load("m")
    frame = np.zeros((1080, 1920, 3), np.uint8)
    tracemalloc.start()
    try:
        [out] = adapter.predict_batch([frame])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # all 64 classes at once: 1080 x 1920 x 64 float32 = 531 MB, and as much again to concat
    assert peak < 200e6, f"peak {peak / 1e6:.0f} MB"
    assert out.mask.size == (1080, 1920)
    assert len(out.class_areas) == 63, "every class but the background"
    assert sum(out.class_areas.values()) == pytest.approx(decode_mask(out.mask).mean(), abs=1e-6)
    scores = np.random.default_rng(0).normal(size=(9, 7, 10)).astype(np.float32)
    assert (upsampled_argmax(scores, 50, 40) == np.argmax(_upsample(scores, 50, 40), -1)).all()
