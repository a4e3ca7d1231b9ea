"""Shared checks every model adapter must pass (like river's ``test_estimators``).

For every zoo model and every kind of user model: a batch gives the same results as the
items one by one, a reloaded model gives the same results, batches larger than
``max_batch`` are split, and bad input raises ``BadInputError`` (never anything else).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from skimage import data

from streamsense.models.base import (
    DetectionOutput,
    ModelAdapter,
    SegmentationOutput,
    SentimentOutput,
)
from streamsense.models.exceptions import BadInputError
from streamsense.models.segmentation import decode_mask
from streamsense.models.store import ModelStore
from streamsense.schemas.results import Detection

ZOO_CASES = [
    "face-blazeface",
    "coco-centernet",
    "coco-centernet-lite",
    "person-selfie",
    "sentiment-tweets",
]
USER_CASES = ["red-detector", "red-detector-fixed", "colour-segmenter"]
TEXT_CASES = ["sentiment-tweets"]


def _params(names: list[str]) -> list[Any]:
    return [pytest.param(n, marks=pytest.mark.models) if n in ZOO_CASES else n for n in names]


ALL = _params(ZOO_CASES + USER_CASES)
IMAGES = _params([n for n in ZOO_CASES + USER_CASES if n not in TEXT_CASES])
TEXTS_ONLY = _params(TEXT_CASES)

TEXTS = [
    "great service, thank you",
    "the app crashed again",
    "meeting at noon",
    "not sure what to think about the update",
    "absolutely loving the new release",
]


def _load(request: pytest.FixtureRequest) -> tuple[ModelAdapter[Any, Any], ModelStore]:
    name = request.param
    if name in ZOO_CASES:
        return request.getfixturevalue("zoo_adapters")[name], request.getfixturevalue("zoo_store")
    store = request.getfixturevalue("user_store")
    return store.load(name), store


@pytest.fixture(params=ALL)
def case(request: pytest.FixtureRequest) -> tuple[ModelAdapter[Any, Any], ModelStore]:
    return _load(request)


@pytest.fixture(params=IMAGES)
def image_case(request: pytest.FixtureRequest) -> tuple[ModelAdapter[Any, Any], ModelStore]:
    return _load(request)


@pytest.fixture(params=TEXTS_ONLY)
def text_case(request: pytest.FixtureRequest) -> tuple[ModelAdapter[Any, Any], ModelStore]:
    return _load(request)


def _inputs(adapter: ModelAdapter[Any, Any], red_image) -> list[Any]:
    if adapter.task == "sentiment":
        return TEXTS
    if adapter.name.startswith("red-detector"):
        return [
            red_image(120, 160, (10, 20, 60, 70)),
            red_image(120, 160, None),
            red_image(240, 100, (50, 0, 100, 240)),
        ]
    if adapter.name == "colour-segmenter":
        img = red_image(100, 100, (0, 0, 50, 100))
        img[80:, 60:] = (0, 0, 255)
        return [img, red_image(64, 64, None), red_image(30, 90, (0, 0, 90, 10))]
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]


def _same(a: Any, b: Any) -> None:
    """Equal results within float tolerance (batched kernels may round differently)."""
    if isinstance(a, SentimentOutput):
        assert a.label == b.label
        assert a.probs == pytest.approx(b.probs, abs=1e-4)
    elif isinstance(a, SegmentationOutput):
        assert a.mask.size == b.mask.size
        ma, mb = decode_mask(a.mask), decode_mask(b.mask)
        assert (ma != mb).mean() < 1e-3
        assert a.class_areas == pytest.approx(b.class_areas, abs=1e-3)
    else:
        assert isinstance(a, list) and len(a) == len(b)
        for da, db in zip(a, b, strict=True):
            assert isinstance(da, DetectionOutput)
            # its wire form is the contract, with box_px in the source size it is given
            wire = Detection.model_validate(da.to_dict(640, 480))
            assert wire.box_px.x2 == pytest.approx(da.box.x2 * 640)
            assert (da.label, da.class_id) == (db.label, db.class_id)
            assert da.score == pytest.approx(db.score, abs=1e-3)
            boxes = (da.box.x1, da.box.y1, da.box.x2, da.box.y2)
            assert boxes == pytest.approx((db.box.x1, db.box.y1, db.box.x2, db.box.y2), abs=2e-3)


def test_batch_equals_singles(case, red_image) -> None:
    adapter, _ = case
    items = _inputs(adapter, red_image)
    batched = adapter.predict_batch(items)
    assert len(batched) == len(items)
    for item, result in zip(items, batched, strict=True):
        _same(result, adapter.predict_batch([item])[0])


def test_reload_gives_the_same_outputs(case, red_image) -> None:
    adapter, store = case
    items = _inputs(adapter, red_image)
    again = store.load(adapter.name, adapter.version)
    assert again is not adapter
    for a, b in zip(adapter.predict_batch(items), again.predict_batch(items), strict=True):
        _same(a, b)


def test_batches_beyond_max_batch_are_split(case, red_image) -> None:
    adapter, _ = case
    items = _inputs(adapter, red_image)
    n = adapter.max_batch + 3
    many = [items[i % len(items)] for i in range(n)]
    results = adapter.predict_batch(many)
    assert len(results) == n
    _same(results[-1], adapter.predict_batch([many[-1]])[0])


def test_output_types_and_metadata(case, red_image) -> None:
    adapter, _ = case
    assert adapter.name and adapter.version
    assert adapter.task in ("detect", "segment", "sentiment")
    assert 1 <= adapter.preferred_batch <= adapter.max_batch
    adapter.warmup()
    result = adapter.predict_batch(_inputs(adapter, red_image)[:1])[0]
    expected = {"detect": list, "segment": SegmentationOutput, "sentiment": SentimentOutput}
    assert isinstance(result, expected[adapter.task])
    if adapter.task == "sentiment":
        assert set(result.probs) == {"negative", "neutral", "positive"}
        assert result.label == max(result.probs, key=result.probs.get)
    if adapter.task == "segment":
        assert all(0.0 <= v <= 1.0 for v in result.class_areas.values())


IMAGE_BAD = {
    "float image": [np.zeros((32, 32, 3), np.float32)],
    "grayscale": [np.zeros((32, 32), np.uint8)],
    "rgba": [np.zeros((32, 32, 4), np.uint8)],
    "empty image": [np.zeros((0, 32, 3), np.uint8)],
    "not an array": ["frame.jpg"],
    "one bad among good": [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)],
    "empty batch": [],
    "a bare image": np.zeros((8, 8, 3), np.uint8),
}
TEXT_BAD = {
    "bytes": [b"bytes are not text"],
    "number": [42],
    "none": [None],
    "empty text": [""],
    "blank text": ["   \n"],
    "too long": ["x" * 70_000],
    "empty batch": [],
    "a bare string": "a string",
}


@pytest.mark.parametrize("kind", IMAGE_BAD)
def test_bad_image_input_raises_bad_input_error(image_case, kind: str) -> None:
    adapter, _ = image_case
    with pytest.raises(BadInputError):
        adapter.predict_batch(IMAGE_BAD[kind])


@pytest.mark.parametrize("kind", TEXT_BAD)
def test_bad_text_input_raises_bad_input_error(text_case, kind: str) -> None:
    adapter, _ = text_case
    with pytest.raises(BadInputError):
        adapter.predict_batch(TEXT_BAD[kind])


def test_tiny_and_large_images_work(image_case) -> None:
    adapter, _ = image_case
    tiny = np.full((1, 1, 3), 200, np.uint8)
    large = np.zeros((1080, 1920, 3), np.uint8)
    small_out, large_out = adapter.predict_batch([tiny, large])
    if adapter.task == "segment":
        assert small_out.mask.size == (1, 1)
        assert large_out.mask.size == (1080, 1920)
        assert large_out.class_areas == pytest.approx(adapter.predict_batch([large])[0].class_areas)
    else:
        _same(large_out, adapter.predict_batch([large])[0])
