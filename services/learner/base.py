"""What the learner needs of a model: ``TrainingAdapter`` and the registry of implementations.

The learner is not sentiment-specific: it predicts, trains a few small steps, copies and saves
through this interface. An implementation is chosen by the model card's ``adapter`` kind (the
same kind the serving side uses, see :mod:`streamsense.models.registry`).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from streamsense.models.card import ModelCard
from streamsense.models.store import ModelStore
from streamsense.services.learner.exceptions import LearnerError, UnknownLabelError

In = TypeVar("In")

#: card adapter kind -> "module:class" of its TrainingAdapter
TRAINERS: dict[str, str] = {
    "keras_text": "streamsense.services.learner.keras_text:KerasTextTrainer",
}


class TrainingAdapter(ABC, Generic[In]):
    """A classifier that can be evaluated, trained incrementally, copied and saved."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self._index = {label: i for i, label in enumerate(self.labels)}

    def encode_labels(self, labels: Sequence[str]) -> np.ndarray:
        """Class ids for label names; UnknownLabelError names the first unknown one."""
        try:
            return np.fromiter((self._index[x] for x in labels), dtype=np.int64, count=len(labels))
        except KeyError as exc:
            msg = f"unknown label {exc.args[0]!r}; the model's labels are {self.labels}"
            raise UnknownLabelError(msg) from None

    def knows(self, label: str) -> bool:
        return label in self._index

    @classmethod
    @abstractmethod
    def from_artifact(
        cls, card: ModelCard, artifact: Path, learning_rate: float
    ) -> TrainingAdapter[Any]:
        """Load a stored version for training (the store verified its sha256 first)."""

    @abstractmethod
    def predict(self, inputs: Sequence[In]) -> np.ndarray:
        """Class probabilities ``[len(inputs), len(labels)]`` (inference mode)."""

    @abstractmethod
    def train_step(self, inputs: Sequence[In], y: np.ndarray) -> float:
        """One gradient step on a small batch; returns the loss before the step."""

    @abstractmethod
    def clone(self) -> TrainingAdapter[In]:
        """An independent copy (weights included; optimizer state fresh)."""

    @abstractmethod
    def save(self, directory: Path) -> Path:
        """Write the artifact into ``directory``; returns its path (file or directory)."""


def trainer_class(card: ModelCard) -> type[TrainingAdapter[Any]]:
    spec = TRAINERS.get(card.adapter)
    if spec is None:
        msg = (
            f"{card.name}/{card.version}: no online trainer for adapter {card.adapter!r} "
            f"(trainers exist for {sorted(TRAINERS)})"
        )
        raise LearnerError(msg)
    module, _, name = spec.partition(":")
    cls: type[TrainingAdapter[Any]] = getattr(importlib.import_module(module), name)
    return cls


def load_trainer(
    store: ModelStore, name: str, version: str, learning_rate: float
) -> tuple[ModelCard, TrainingAdapter[Any]]:
    """The verified card of ``name``/``version`` and a trainer loaded from its artifact."""
    card = store.verify(name, version)
    cls = trainer_class(card)
    return card, cls.from_artifact(card, store.artifact_path(name, version), learning_rate)
