"""Users register their own SavedModels: a TF2 OD API detector and a logits segmenter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamsense.models.exceptions import SignatureError
from streamsense.models.register import register_saved_model
from streamsense.models.segmentation import decode_mask
from streamsense.models.store import ModelStore
from streamsense.services.cli.models import app

runner = CliRunner()


def _register(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["register", *args])
    return result.exit_code, result.output


def test_register_detector_with_cli_and_detect_red_square(
    tmp_path: Path, user_detector: Path, red_image
) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("background\nred square\n")
    store = tmp_path / "store"
    code, output = _register(
        str(user_detector),
        "--name",
        "red",
        "--task",
        "detect",
        "--labels",
        str(labels),
        "--licence",
        "MIT",
        "--store",
        str(store),
    )
    assert code == 0, output
    assert "registered red/1" in output

    model_store = ModelStore(store)
    assert model_store.champion("red") == "1"
    card = model_store.card("red", "1")
    assert (card.task, card.adapter, card.licence, card.source.kind) == (
        "detect",
        "tfod",
        "MIT",
        "user",
    )
    detector = model_store.load("red")
    frame = red_image(480, 640, (100, 50, 300, 250))
    (found,) = detector.predict_batch([frame])
    assert len(found) == 1  # the zero-score padding detection is dropped
    det = found[0]
    assert (det.label, det.class_id, det.score) == ("red square", 1, pytest.approx(0.9))
    px = det.box_px
    assert (px.x1, px.y1, px.x2, px.y2) == pytest.approx((100, 50, 300, 250), abs=0.5)
    assert (det.box.x1, det.box.y2) == pytest.approx((100 / 640, 250 / 480), abs=1e-3)
    assert detector.predict_batch([red_image(100, 100, None)]) == [[]]


def test_register_segmenter_and_measure_class_areas(
    tmp_path: Path, user_segmenter: Path, red_image
) -> None:
    store = ModelStore(tmp_path / "store")
    card = register_saved_model(
        store,
        user_segmenter,
        name="colours",
        task="segment",
        labels=["background", "red", "blue"],
        value_range=(0.0, 1.0),
    )
    assert card.input.shape == [None, 64, 64, 3]
    assert card.input.resize == "stretch"
    segmenter = store.load("colours")
    img = red_image(120, 200, (0, 0, 100, 120))  # left half red
    img[60:, 150:] = (0, 0, 255)  # a blue quarter of the right half
    (out,) = segmenter.predict_batch([img])
    assert out.mask.size == (120, 200)
    assert out.class_areas["red"] == pytest.approx(0.5, abs=0.03)
    assert out.class_areas["blue"] == pytest.approx(0.125, abs=0.03)
    mask = decode_mask(out.mask)
    assert mask[:, :90].mean() > 0.97  # red region is foreground
    assert mask[:50, 110:].mean() < 0.03  # gray region is background
    assert mask[70:, 160:].mean() > 0.97


def test_fixed_size_batch_one_float_detector(
    tmp_path: Path, user_fixed_detector: Path, red_image
) -> None:
    store = ModelStore(tmp_path / "store")
    card = register_saved_model(
        store, user_fixed_detector, name="fixed", task="detect", value_range=(0.0, 1.0)
    )
    assert (card.input.shape, card.input.dtype) == ([1, 96, 96, 3], "float32")
    assert (card.max_batch, card.preferred_batch, card.input.resize) == (1, 1, "stretch")
    detector = store.load("fixed")
    frames = [red_image(480, 640, (160, 120, 480, 360)), red_image(200, 200, None)]
    found, nothing = detector.predict_batch(frames)  # split into two batch-1 calls
    assert nothing == []
    px = found[0].box_px
    # Stretched to 96x96, so edges are known to one model pixel: 640/96 and 480/96 source px.
    assert (px.x1, px.x2) == pytest.approx((160, 480), abs=640 / 96)
    assert (px.y1, px.y2) == pytest.approx((120, 360), abs=480 / 96)


def test_second_registration_gets_next_version_and_keeps_champion(
    tmp_path: Path, user_detector: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    register_saved_model(store, user_detector, name="red", task="detect")
    card = register_saved_model(store, user_detector, name="red", task="detect")
    assert card.version == "2"
    assert store.champion("red") == "1"
    register_saved_model(store, user_detector, name="red", task="detect", champion=True)
    assert store.champion("red") == "3"


def test_wrong_signature_gives_a_clear_error(tmp_path: Path, wrong_model: Path) -> None:
    store = tmp_path / "store"
    code, output = _register(
        str(wrong_model), "--name", "x", "--task", "detect", "--store", str(store)
    )
    assert code == 1
    assert "not a TF Object Detection API detector" in output
    assert "detection_boxes" in output
    assert not store.exists() or ModelStore(store).list() == []

    with pytest.raises(SignatureError, match=r"\[batch, height, width, classes\]"):
        register_saved_model(ModelStore(store), wrong_model, name="x", task="segment")


def test_detector_registered_as_segmenter_is_refused(tmp_path: Path, user_detector: Path) -> None:
    with pytest.raises(SignatureError, match="not a segmentation model"):
        register_saved_model(ModelStore(tmp_path), user_detector, name="x", task="segment")


def test_register_a_directory_that_is_no_saved_model(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, output = _register(
        str(tmp_path / "empty"), "--name", "x", "--task", "segment", "--store", str(tmp_path)
    )
    assert code == 1
    assert "is not a SavedModel directory" in output


def test_register_rejects_unknown_task(tmp_path: Path, user_detector: Path) -> None:
    code, output = _register(
        str(user_detector), "--name", "x", "--task", "classify", "--store", str(tmp_path)
    )
    assert code == 1
    assert "--task must be detect or segment" in output


def test_list_shows_registered_models(user_store: ModelStore) -> None:
    result = runner.invoke(app, ["list", "--store", str(user_store.root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "red-detector" in result.output
    assert "colour-segmenter" in result.output
    assert "1 *" in result.output  # champions are marked


def test_detector_handles_mixed_image_sizes_in_one_batch(user_store: ModelStore, red_image) -> None:
    detector = user_store.load("red-detector")
    frames = [
        red_image(100, 100, (10, 10, 20, 20)),
        red_image(300, 200, (0, 0, 200, 300)),
        red_image(50, 80, None),
    ]
    small, full, empty = detector.predict_batch(frames)
    assert small[0].box_px.x2 == pytest.approx(20, abs=0.5)
    assert (full[0].box.x1, full[0].box.y1, full[0].box.x2, full[0].box.y2) == pytest.approx(
        (0, 0, 1, 1)
    )
    assert empty == []
    assert np.isclose(full[0].box_px.y2, 300)
