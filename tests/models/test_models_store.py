"""The model store: versions, cards, champion pointer, atomic writes, sha256 verification."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from streamsense.models.card import InputSpec, ModelCard, Source
from streamsense.models.digest import artifact_sha256
from streamsense.models.exceptions import ModelError, ModelIntegrityError, ModelNotFoundError
from streamsense.models.store import ModelStore
from streamsense.models.store_files import STALE_TMP_S


def _card(artifact: Path, name: str = "seg", version: str = "1") -> ModelCard:
    return ModelCard(
        name=name,
        version=version,
        task="segment",
        adapter="logits",
        format="saved_model",
        artifact="saved_model",
        sha256=artifact_sha256(artifact),
        licence="Apache-2.0",
        source=Source(kind="user"),
        input=InputSpec(
            kind="image", shape=[None, 64, 64, 3], dtype="float32", value_range=(0.0, 1.0)
        ),
        labels=["background", "red", "blue"],
        max_batch=4,
    )


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "store")


def test_put_then_read_back(store: ModelStore, user_segmenter: Path) -> None:
    card = _card(user_segmenter)
    store.put("seg", "1", user_segmenter, card)

    assert store.list() == ["seg"]
    assert store.versions("seg") == ["1"]
    assert store.card("seg", "1") == card
    assert store.champion("seg") is None
    assert artifact_sha256(store.artifact_path("seg", "1")) == card.sha256
    on_disk = json.loads((store.root / "seg" / "1" / "card.json").read_text())
    assert on_disk["sha256"] == card.sha256
    assert on_disk["created"].endswith("Z") or on_disk["created"].endswith("+00:00")


def test_champion_pointer_and_load(store: ModelStore, user_segmenter: Path, red_image) -> None:
    for version in ("1", "2", "10"):
        store.put("seg", version, user_segmenter, _card(user_segmenter, version=version))
    assert store.versions("seg") == ["1", "2", "10"]  # numeric order, not "1", "10", "2"

    with pytest.raises(ModelNotFoundError, match="no champion"):
        store.load("seg")
    store.set_champion("seg", "2")
    assert store.champion("seg") == "2"
    adapter = store.load("seg")
    assert (adapter.name, adapter.version) == ("seg", "2")
    out = adapter.predict_batch([red_image(64, 64, (0, 0, 32, 64))])[0]
    assert out.class_areas["red"] == pytest.approx(0.5, abs=0.02)

    store.set_champion("seg", "10")
    assert store.load("seg").version == "10"
    with pytest.raises(ModelNotFoundError):
        store.set_champion("seg", "11")
    assert store.champion("seg") == "10"
    assert not [p for p in (store.root / "seg").iterdir() if p.name.startswith(".")]


def test_versions_are_immutable(store: ModelStore, user_segmenter: Path) -> None:
    store.put("seg", "1", user_segmenter, _card(user_segmenter))
    with pytest.raises(ModelError, match="immutable"):
        store.put("seg", "1", user_segmenter, _card(user_segmenter))


def test_put_rejects_an_artifact_that_does_not_match_its_card(
    store: ModelStore, user_segmenter: Path
) -> None:
    card = _card(user_segmenter).model_copy(update={"sha256": "0" * 64})
    with pytest.raises(ModelIntegrityError, match="does not match"):
        store.put("seg", "1", user_segmenter, card)
    assert store.versions("seg") == []


def test_failed_put_leaves_nothing_behind(
    store: ModelStore, user_segmenter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_copy(src: Path, dst: Path) -> None:
        Path(dst).mkdir(parents=True)
        (Path(dst) / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copytree", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        store.put("seg", "1", user_segmenter, _card(user_segmenter))
    assert store.versions("seg") == []
    assert list((store.root / "seg").iterdir()) == []


def test_a_killed_writers_leftovers_are_swept_by_the_next_put(
    store: ModelStore, user_segmenter: Path
) -> None:
    """A process killed inside ``put`` cannot clean up; the next put removes what is over an
    hour old, and leaves a younger one alone (it may be another writer's, still running)."""
    model_dir = store.root / "seg"
    old, young = model_dir / ".tmp-1-dead", model_dir / ".tmp-2-busy"
    for d in (old, young):
        (d / "saved_model").mkdir(parents=True)
        (d / "saved_model" / "saved_model.pb").write_bytes(b"x" * 1000)
    two_hours_ago = time.time() - 2 * STALE_TMP_S
    os.utime(old, (two_hours_ago, two_hours_ago))
    store.put("seg", "1", user_segmenter, _card(user_segmenter))
    assert sorted(p.name for p in model_dir.iterdir()) == [".tmp-2-busy", "1"]


def test_tampered_artifact_raises_integrity_error(store: ModelStore, user_segmenter: Path) -> None:
    store.put("seg", "1", user_segmenter, _card(user_segmenter))
    store.set_champion("seg", "1")
    variables = next((store.root / "seg" / "1" / "saved_model" / "variables").glob("*.data-*"))
    raw = bytearray(variables.read_bytes())
    raw[-1] ^= 0xFF
    variables.write_bytes(bytes(raw))

    with pytest.raises(ModelIntegrityError, match="does not match its card"):
        store.load("seg")
    with pytest.raises(ModelIntegrityError):
        store.verify("seg", "1")


def test_added_file_changes_directory_digest(tmp_path: Path, user_segmenter: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(user_segmenter, copy)
    assert artifact_sha256(copy) == artifact_sha256(user_segmenter)  # location-independent
    (copy / "assets" / "extra.txt").parent.mkdir(exist_ok=True)
    (copy / "assets" / "extra.txt").write_text("x")
    assert artifact_sha256(copy) != artifact_sha256(user_segmenter)


def test_renamed_file_changes_directory_digest(tmp_path: Path, user_segmenter: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(user_segmenter, copy)
    (copy / "fingerprint.pb").rename(copy / "fingerprint2.pb")
    assert artifact_sha256(copy) != artifact_sha256(user_segmenter)


def test_corrupt_card_raises_integrity_error(store: ModelStore, user_segmenter: Path) -> None:
    store.put("seg", "1", user_segmenter, _card(user_segmenter))
    (store.root / "seg" / "1" / "card.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="unreadable model card"):
        store.card("seg", "1")


def test_replace_repairs_a_version(store: ModelStore, user_segmenter: Path) -> None:
    store.put("seg", "1", user_segmenter, _card(user_segmenter))
    (store.root / "seg" / "1" / "saved_model" / "saved_model.pb").write_bytes(b"corrupt")
    with pytest.raises(ModelIntegrityError):
        store.verify("seg", "1")
    store.put("seg", "1", user_segmenter, _card(user_segmenter), replace=True)
    assert store.verify("seg", "1").sha256 == artifact_sha256(user_segmenter)


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".hidden", "", "sp ace"])
def test_names_are_validated(store: ModelStore, bad: str) -> None:
    with pytest.raises(ModelError):
        store.versions(bad)


def test_missing_model_and_version(store: ModelStore) -> None:
    assert store.list() == []
    assert store.versions("nothing") == []
    with pytest.raises(ModelNotFoundError):
        store.card("nothing", "1")
    with pytest.raises(ModelNotFoundError):
        store.load("nothing", "1")


def test_segmenter_areas_sum_to_one_with_background(
    store: ModelStore, user_segmenter: Path, red_image
) -> None:
    store.put("seg", "1", user_segmenter, _card(user_segmenter))
    adapter = store.load("seg", "1")
    img = red_image(64, 64, None)
    img[32:, :] = (0, 0, 255)
    out = adapter.predict_batch([img])[0]
    assert out.class_areas["blue"] == pytest.approx(0.5, abs=0.03)
    assert out.class_areas["red"] == pytest.approx(0.0, abs=0.01)
    assert np.isclose(sum(out.class_areas.values()), 0.5, atol=0.03)  # background excluded


def test_load_serving_falls_back_from_a_corrupt_champion(
    store: ModelStore, user_segmenter: Path
) -> None:
    """The champion serves; an unreadable pointer or a corrupt champion falls back to the
    newest version that loads, with the reason; nothing loadable is an integrity error."""
    for version in ("1", "2", "3"):
        store.put("seg", version, user_segmenter, _card(user_segmenter, version=version))
    store.set_champion("seg", "3")
    adapter, why = store.load_serving("seg")
    assert (adapter.version, why) == ("3", None)

    weights = store.artifact_path("seg", "3") / "saved_model.pb"
    weights.write_bytes(weights.read_bytes()[:-10])  # truncated on disk
    adapter, why = store.load_serving("seg")
    assert adapter.version == "2"
    assert why is not None and "champion seg@3 cannot be loaded" in why and "serving 2" in why

    (store.root / "seg" / "champion.json").write_text("{not json")
    adapter, why = store.load_serving("seg")
    assert adapter.version == "2"  # 3 is still corrupt
    assert why is not None and why.startswith("champion pointer of seg cannot be loaded")
    assert "unreadable champion pointer" in why

    for version in ("1", "2"):
        (store.artifact_path("seg", version) / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ModelIntegrityError, match="no version of 'seg' can be loaded"):
        store.load_serving("seg")
    with pytest.raises(ModelNotFoundError, match="`streamsense models list` shows what is there"):
        store.load_serving("nope")
