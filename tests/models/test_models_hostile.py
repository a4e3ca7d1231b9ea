"""Hostile model files and stores: every one is refused with the reason, none is served.

The artifacts are built in the test from the zoo's sentiment model (a real ``.keras``
archive) and tiny Keras models; the store is a real one in a temporary directory.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from streamsense.models.archive import MAX_MEMBERS, check_keras_archive
from streamsense.models.card import ModelCard
from streamsense.models.digest import artifact_sha256
from streamsense.models.exceptions import (
    ModelIntegrityError,
    ModelOutputError,
    SignatureError,
    UnsafeModelError,
)
from streamsense.models.store import ModelStore
from streamsense.services.learner.keras_text import KerasTextTrainer

pytestmark = pytest.mark.models

ZOO = "sentiment-tweets"


@pytest.fixture(scope="module")
def original(zoo_store: ModelStore) -> tuple[ModelCard, Path]:
    return zoo_store.card(ZOO, "1"), zoo_store.artifact_path(ZOO, "1")


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "store")


def _put(store: ModelStore, card: ModelCard, version: str, artifact: Path) -> ModelCard:
    """Store ``artifact`` as s/``version`` with a card that matches it (what an attacker with
    write access to the store, or a careless user, produces)."""
    data = card.model_dump()
    data.update(name="s", version=version, sha256=artifact_sha256(artifact))
    data["artifact"] = artifact.name
    return store.put("s", version, artifact, ModelCard.model_validate(data))


def _rewrite(src: Path, dst: Path, extra: dict[str, bytes], drop: tuple[str, ...] = ()) -> Path:
    """A copy of the archive ``src`` with members dropped and ``extra`` ones added (deflated)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            if name not in drop and name not in extra:
                zout.writestr(name, zin.read(name))
        for name, data in extra.items():
            zout.writestr(name, data)
    return dst


def _hostile_archives(src: Path, work: Path) -> dict[str, tuple[Path, type[Exception], str]]:
    """name -> (archive, the error it must raise, a phrase of the reason)."""
    raw = src.read_bytes()
    config = zipfile.ZipFile(src).read("config.json")
    truncated = work / "truncated" / "model.keras"
    truncated.parent.mkdir(parents=True)
    truncated.write_bytes(raw[: len(raw) // 2])
    garbage = work / "garbage" / "model.keras"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(os.urandom(4096))
    # 4 MB of spaces inside config.json: valid JSON, deflated to a few KB
    padded = config[:-1] + b" " * (4 << 20) + b"}"
    many = {f"assets/x{i}.txt": b"x" for i in range(MAX_MEMBERS)}
    inp = keras.Input(shape=(3,))
    lam = keras.Model(inp, keras.layers.Lambda(lambda x: x * 2)(inp))
    lam_path = work / "lambda" / "model.keras"
    lam_path.parent.mkdir(parents=True)
    lam.save(lam_path)
    return {
        "truncated": (truncated, ModelIntegrityError, "truncated or corrupt zip"),
        "garbage": (garbage, ModelIntegrityError, "truncated or corrupt zip"),
        "traversal": (
            _rewrite(src, work / "trav" / "model.keras", {"../../evil.txt": b"pwned"}),
            UnsafeModelError,
            "outside the archive",
        ),
        "absolute": (
            _rewrite(src, work / "abs" / "model.keras", {"/tmp/evil.txt": b"pwned"}),
            UnsafeModelError,
            "outside the archive",
        ),
        "bomb": (
            _rewrite(src, work / "bomb" / "model.keras", {"config.json": padded}),
            UnsafeModelError,
            "decompression bomb",
        ),
        "many members": (
            _rewrite(src, work / "many" / "model.keras", many),
            UnsafeModelError,
            f"at most {MAX_MEMBERS}",
        ),
        "no weights": (
            _rewrite(src, work / "nowt" / "model.keras", {}, drop=("model.weights.h5",)),
            ModelIntegrityError,
            "no weights file",
        ),
        "config not json": (
            _rewrite(src, work / "badjson" / "model.keras", {"config.json": b"{not json"}),
            ModelIntegrityError,
            "JSONDecodeError",
        ),
        "lambda layer": (lam_path, ModelIntegrityError, "Lambda"),
    }


def test_hostile_keras_archives_are_refused_by_serving_and_learning_before_keras_reads_them(
    original: tuple[ModelCard, Path], store: ModelStore, tmp_path: Path
) -> None:
    card, src = original
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cases = _hostile_archives(src, tmp_path / "work")
    for version, (name, (path, error, reason)) in enumerate(cases.items(), start=1):
        stored = _put(store, card, str(version), path)
        with pytest.raises(error, match=reason):
            store.load("s", str(version))
        artifact = store.artifact_path("s", str(version))
        with pytest.raises(error, match=reason):  # the learner's own loader
            KerasTextTrainer.from_artifact(stored, artifact, 1e-3)
        assert not (tmp_path / "evil.txt").exists(), name
    assert not Path("/tmp/evil.txt").exists()
    # the bomb was refused from the zip directory, not after inflating it
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 500, grown_mb


def test_the_zoo_archive_passes_the_check_and_still_serves(
    original: tuple[ModelCard, Path], store: ModelStore
) -> None:
    card, src = original
    check_keras_archive(src)
    _put(store, card, "1", src)
    [out] = store.load("s", "1").predict_batch(["what a lovely flight"])
    assert out.label in card.labels and abs(sum(out.probs.values()) - 1.0) < 1e-3


def _text_model(vocab: list[str], blow_up: str | None = None, *, softmax: bool = True) -> object:
    """A 3-class Keras text classifier; the embedding of ``blow_up`` is huge, so its output
    overflows to NaN while other texts stay finite."""
    inp = keras.Input(shape=(), dtype="string")
    vec = keras.layers.TextVectorization(vocabulary=vocab, output_sequence_length=4)
    emb = keras.layers.Embedding(len(vocab) + 2, 4)
    x = keras.layers.GlobalAveragePooling1D()(emb(vec(inp)))
    dense = keras.layers.Dense(3, activation="softmax" if softmax else None)
    model = keras.Model(inp, dense(x))
    if blow_up is not None:
        weights = emb.get_weights()[0]
        weights[vec.get_vocabulary().index(blow_up)] = 3e38
        emb.set_weights([weights])
        dense.set_weights([np.full((4, 3), 3e38, np.float32), np.zeros(3, np.float32)])
    elif not softmax:
        dense.set_weights([dense.get_weights()[0], np.asarray([50.0, -7.0, 3.0], np.float32)])
    return model


def test_models_with_nan_or_non_probability_outputs_are_refused_or_dead_letter_the_input(
    original: tuple[ModelCard, Path], store: ModelStore, tmp_path: Path
) -> None:
    card, _ = original
    nan_model = _text_model(["calm", "ok"], blow_up="ok")  # the load probe text is "ok"
    logits = _text_model(["calm"], softmax=False)
    per_input = _text_model(["calm", "boom"], blow_up="boom")
    for version, model in (("1", nan_model), ("2", logits), ("3", per_input)):
        path = tmp_path / version / "model.keras"
        path.parent.mkdir()
        model.save(path)  # type: ignore[attr-defined]
        _put(store, card, version, path)
    with pytest.raises(SignatureError, match="not finite"):
        store.load("s", "1")
    with pytest.raises(SignatureError, match="not a probability distribution"):
        store.load("s", "2")
    adapter = store.load("s", "3")
    with pytest.raises(ModelOutputError, match="text 1: the model's output is not finite"):
        adapter.predict_batch(["calm seas", "boom"])
    [fine] = adapter.predict_batch(["calm seas"])  # the worker's one-by-one retry
    assert np.isfinite(list(fine.probs.values())).all()


def test_symbolic_links_in_the_store_are_never_followed(
    original: tuple[ModelCard, Path], store: ModelStore, tmp_path: Path
) -> None:
    card, src = original
    _put(store, card, "1", src)
    store.set_champion("s", "1")
    outside = tmp_path / "outside"
    shutil.copytree(store.root / "s" / "1", outside / "v2")
    data = json.loads((outside / "v2" / "card.json").read_text())
    (outside / "v2" / "card.json").write_text(json.dumps({**data, "version": "2"}))
    (store.root / "s" / "2").symlink_to(outside / "v2")
    # a linked version is not listed, not loaded, and not served as a fallback
    assert store.versions("s") == ["1"]
    with pytest.raises(ModelIntegrityError, match="symbolic link"):
        store.load("s", "2")
    store.set_champion("s", "1")
    (store.root / "s" / "champion.json").write_text('{"version": "2"}')
    adapter, why = store.load_serving("s")
    assert adapter.version == "1" and why is not None and "symbolic link" in why
    # a card linked to another file is refused without showing that file's content
    secret = outside / "secret.json"
    secret.write_text('{"password": "hunter2"}')
    (store.root / "s" / "3").mkdir()
    (store.root / "s" / "3" / "card.json").symlink_to(secret)
    with pytest.raises(ModelIntegrityError, match="symbolic link") as info:
        store.card("s", "3")
    assert "hunter2" not in str(info.value)
    # a model directory linked elsewhere is never written through
    (store.root / "evil").symlink_to(outside)
    evil = ModelCard.model_validate({**card.model_dump(), "name": "evil", "version": "9"})
    with pytest.raises(ModelIntegrityError, match="symbolic link"):
        store.put("evil", "9", src, evil)
    assert not (outside / "9").exists()
    # a directory linked inside an artifact is not skipped by the digest
    art = tmp_path / "saved"
    (art / "variables").mkdir(parents=True)
    (art / "saved_model.pb").write_bytes(b"x")
    (art / "assets").symlink_to(outside)
    with pytest.raises(ModelIntegrityError, match="only plain files"):
        artifact_sha256(art)


def test_cards_with_absurd_or_hostile_fields_are_refused_without_echoing_them(
    original: tuple[ModelCard, Path], store: ModelStore
) -> None:
    card, src = original
    _put(store, card, "1", src)
    path = store.root / "s" / "1" / "card.json"
    good = json.loads(path.read_text())
    hostile = [
        {**good, "max_batch": 10**9},  # warmup would run every power of two up to it
        {**good, "labels": ["<script>alert(1)</script>", "b", "c"]},
        {**good, "artifact": "../../../etc/passwd"},
        {**good, "version": "../1"},
        {key: value for key, value in good.items() if key != "sha256"},
    ]
    for data in hostile:
        path.write_text(json.dumps(data))
        with pytest.raises(ModelIntegrityError) as info:
            store.load("s", "1")
        assert "<script>" not in str(info.value) and "passwd" not in str(info.value)
    path.write_text(json.dumps(good) + " " * (2 << 20))  # a card far larger than any written
    with pytest.raises(ModelIntegrityError, match="larger than"):
        store.card("s", "1")
    path.write_text(json.dumps(good))
    (store.root / "s" / "champion.json").write_text('{"version": "../../etc"}')
    with pytest.raises(ModelIntegrityError, match="no valid version"):
        store.champion("s")
