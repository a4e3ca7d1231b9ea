"""The model adapter interface: ``load``, ``predict_batch``, ``warmup``.

An adapter turns a loaded artifact into a pure function from a batch of raw inputs (RGB
images of any size, or texts) to task results. It validates every input and raises
:class:`~streamsense.models.exceptions.BadInputError` for anything it cannot serve, splits a
batch into power-of-two chunks of at most ``max_batch``
(:func:`streamsense.models.runtime.batch_plan`), and never needs Kafka to be tested.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from streamsense.models.card import ModelCard
from streamsense.models.exceptions import BadInputError, ModelError
from streamsense.models.runtime import batch_plan
from streamsense.schemas.model_updates import Task
from streamsense.schemas.results import RleMask

In = TypeVar("In")
Out = TypeVar("Out")


class BoxXYXY(NamedTuple):
    x1: float
    y1: float
    x2: float
    y2: float

    def scaled(self, width: float, height: float) -> BoxXYXY:
        return BoxXYXY(self.x1 * width, self.y1 * height, self.x2 * width, self.y2 * height)

    def as_dict(self) -> dict[str, float]:
        return {"x1": self.x1, "y1": self.y1, "x2": self.x2, "y2": self.y2}


@dataclass(frozen=True, slots=True)
class DetectionOutput:
    """One object found in an image: ``box`` is normalized xyxy in ``[0, 1]``; ``width`` and
    ``height`` are those of the image the detector was given."""

    label: str
    class_id: int
    score: float
    box: BoxXYXY
    width: int
    height: int

    @property
    def box_px(self) -> BoxXYXY:
        """The box in the pixels of the image the detector was given."""
        return self.box.scaled(self.width, self.height)

    def to_dict(self, width: int, height: int) -> dict[str, Any]:
        """The wire form of :class:`~streamsense.schemas.results.Detection`, with ``box_px`` in
        a ``width`` x ``height`` source (a worker decodes frames reduced: the source size is
        the frame's, not the decoded image's)."""
        return {
            "label": self.label,
            "class_id": self.class_id,
            "score": self.score,
            "box": self.box.as_dict(),
            "box_px": self.box.scaled(width, height).as_dict(),
        }


@dataclass(frozen=True, slots=True)
class SegmentationOutput:
    """Foreground mask at source resolution and the fraction of the image per class."""

    mask: RleMask
    class_areas: dict[str, float]


@dataclass(frozen=True, slots=True)
class SentimentOutput:
    label: str
    probs: dict[str, float]


class ModelAdapter(ABC, Generic[In, Out]):
    """One model version behind the uniform ``load / predict_batch / warmup`` interface."""

    task: ClassVar[Task]

    def __init__(self, card: ModelCard, artifact: Path) -> None:
        if card.task != self.task:
            msg = f"{card.name}/{card.version} is a {card.task} model, not {self.task}"
            raise ModelError(msg)
        self.card = card
        self.artifact = artifact
        self.name = card.name
        self.version = card.version
        self.preferred_batch = card.preferred_batch
        self.max_batch = card.max_batch
        self._loaded = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}/{self.version})"

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    def load(self) -> None:
        """Load the artifact (idempotent)."""
        if not self._loaded:
            self._load()
            self._loaded = True

    def predict_batch(self, items: Sequence[In]) -> list[Out]:
        """Results for ``items``, in order. Raises BadInputError for any unusable item."""
        if not self._loaded:
            msg = f"{self!r}: call load() before predict_batch()"
            raise ModelError(msg)
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            msg = f"expected a sequence of inputs, got {type(items).__name__}"
            raise BadInputError(msg)
        if len(items) == 0:
            msg = "empty batch"
            raise BadInputError(msg)
        checked = self._check(items)
        results: list[Out] = []
        start = 0
        for size in batch_plan(len(checked), self.max_batch):
            results.extend(self._predict_chunk(checked[start : start + size]))
            start += size
        return results

    def warmup(self) -> None:
        """Run every batch bucket once so no request pays for tracing or allocation."""
        self.load()
        sample = self.sample_input()
        size = 1
        while size <= self.max_batch:
            self.predict_batch([sample] * size)
            size *= 2

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _check(self, items: Sequence[In]) -> list[In]:
        """The items, validated (raise BadInputError)."""

    @abstractmethod
    def _predict_chunk(self, items: list[In]) -> list[Out]:
        """Results for at most ``max_batch`` validated items (a power of two)."""

    @abstractmethod
    def sample_input(self) -> In:
        """A valid input, for warmup and benchmarks."""
