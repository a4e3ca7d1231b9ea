"""The first :class:`TrainingAdapter`: a Keras text classifier taking raw strings.

Works for any ``.keras`` model whose single input is a string tensor ``[None]`` (the model
holds its own ``TextVectorization``) and whose output is a softmax over the card's labels,
such as the zoo's ``sentiment-tweets``. Training steps and prediction run through
``tf.function``\\ s with fixed signatures (no retracing per batch size); the optimizer is kept
outside the model, so saved artifacts hold weights only and load with ``safe_mode=True``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamsense.models.card import ModelCard
from streamsense.models.exceptions import SignatureError
from streamsense.models.runtime import configure_devices, load_keras
from streamsense.models.sentiment import clean_text
from streamsense.services.learner.base import TrainingAdapter

log = logging.getLogger(__name__)

ARTIFACT = "model.keras"


class KerasTextTrainer(TrainingAdapter[str]):
    """Adam with a small learning rate on sparse categorical cross-entropy."""

    def __init__(self, model: Any, labels: Sequence[str], learning_rate: float) -> None:
        import keras
        import tensorflow as tf

        super().__init__(labels)
        configure_devices()
        if len(model.inputs) != 1 or str(model.inputs[0].dtype) != "string":
            msg = "a Keras text classifier takes one string input"
            raise SignatureError(msg)
        self.model = model
        self.learning_rate = learning_rate
        self._optimizer = keras.optimizers.Adam(learning_rate)
        self._optimizer.build(model.trainable_variables)
        loss_fn = keras.losses.SparseCategoricalCrossentropy()
        texts = tf.TensorSpec([None], tf.string)
        ids = tf.TensorSpec([None], tf.int64)
        variables = model.trainable_variables
        optimizer = self._optimizer

        def step(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

        self._predict = tf.function(lambda x: model(x, training=False), input_signature=[texts])
        self._step = tf.function(step, input_signature=[texts, ids])
        probe = np.asarray(self._predict(np.asarray(["ok"], dtype=object)))
        if probe.shape != (1, len(self.labels)):
            msg = f"model output {probe.shape} does not match labels {self.labels}"
            raise SignatureError(msg)

    @classmethod
    def from_artifact(
        cls, card: ModelCard, artifact: Path, learning_rate: float
    ) -> KerasTextTrainer:
        return cls(load_keras(artifact), card.labels, learning_rate)

    @staticmethod
    def _texts(inputs: Sequence[str]) -> np.ndarray:
        return np.asarray([clean_text(t) for t in inputs], dtype=object)

    def predict(self, inputs: Sequence[str]) -> np.ndarray:
        return np.asarray(self._predict(self._texts(inputs)))

    def train_step(self, inputs: Sequence[str], y: np.ndarray) -> float:
        return float(self._step(self._texts(inputs), np.asarray(y, dtype=np.int64)))

    def clone(self) -> KerasTextTrainer:
        """A copy through the artifact format itself (what is saved is what is cloned)."""
        import keras

        with tempfile.TemporaryDirectory(prefix="streamsense-clone-") as tmp:
            path = self.save(Path(tmp))
            model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
        return KerasTextTrainer(model, self.labels, self.learning_rate)

    def save(self, directory: Path) -> Path:
        path = directory / ARTIFACT
        self.model.save(path)
        return path
