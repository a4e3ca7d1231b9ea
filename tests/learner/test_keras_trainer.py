"""The Keras text TrainingAdapter: what it trains is what the workers serve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamsense.models.sentiment import KerasSentiment
from streamsense.models.store import ModelStore
from streamsense.services.learner.base import load_trainer, trainer_class
from streamsense.services.learner.drifted import store_champion
from streamsense.services.learner.exceptions import LearnerError
from streamsense.services.learner.keras_text import KerasTextTrainer
from streamsense.services.learner.publish import store_trained

POS = ["good great day", "love it great", "happy good love", "great good happy"]
NEG = ["bad awful day", "hate it awful", "sad bad hate", "awful bad sad"]


def tiny_model() -> object:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    vec = keras.layers.TextVectorization(max_tokens=50, output_sequence_length=8)
    vec.adapt(tf.constant(POS + NEG + ["neutral words here"]))
    inputs = keras.Input(shape=(), dtype="string")
    x = keras.layers.Embedding(50, 8, mask_zero=True)(vec(inputs))
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    root = tmp_path_factory.mktemp("keras-trainer")
    store = ModelStore(root / "store")
    store_champion(store, "tiny", tiny_model(), root)
    return store


def test_trainer_is_chosen_by_the_cards_adapter_kind(store: ModelStore) -> None:
    card, trainer = load_trainer(store, "tiny", "1", 0.05)
    assert isinstance(trainer, KerasTextTrainer) and trainer.labels == card.labels
    with pytest.raises(LearnerError, match="no online trainer for adapter 'selfie'"):
        trainer_class(card.model_copy(update={"adapter": "selfie"}))


def test_steps_learn_and_clones_are_independent(store: ModelStore) -> None:
    _, champion = load_trainer(store, "tiny", "1", 0.05)
    challenger = champion.clone()
    texts = POS + NEG
    np.testing.assert_allclose(champion.predict(texts), challenger.predict(texts), atol=1e-6)
    y = champion.encode_labels(["positive"] * 4 + ["negative"] * 4)
    losses = [challenger.train_step(texts, y) for _ in range(60)]
    assert losses[-1] < losses[0] * 0.5
    assert (challenger.predict(texts).argmax(axis=1) == y).all()
    before = champion.predict(texts)
    np.testing.assert_allclose(champion.predict(texts), before)  # the champion did not move
    assert not np.allclose(champion.predict(texts), challenger.predict(texts), atol=1e-3)


def test_a_stored_version_serves_what_was_trained(store: ModelStore, tmp_path: Path) -> None:
    card, champion = load_trainer(store, "tiny", "1", 0.05)
    trainer = champion.clone()
    texts = POS + NEG + ["GOOD\u2028great\x00day"]  # serving cleans control characters too
    y = champion.encode_labels(["positive"] * 4 + ["negative"] * 4 + ["positive"])
    for _ in range(30):
        trainer.train_step(texts, y)
    work = ModelStore(tmp_path / "store")
    store_champion(work, "tiny", champion.model, tmp_path)  # type: ignore[attr-defined]
    assert work.next_version("tiny") == "2"
    new = store_trained(work, trainer, work.card("tiny", "1"), {"prequential_accuracy": 0.9}, "t")
    assert (new.version, work.champion("tiny")) == ("2", "2")
    assert work.verify("tiny", "2").metrics == {"prequential_accuracy": 0.9}
    served = work.load("tiny", "2")
    assert isinstance(served, KerasSentiment)
    probs = np.array([[o.probs[k] for k in card.labels] for o in served.predict_batch(texts)])
    np.testing.assert_allclose(probs, trainer.predict(texts), atol=1e-5)
