"""Adapter kinds a model card can name, and the factory that builds one from a card."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from streamsense.models.base import ModelAdapter
from streamsense.models.card import ArtifactFormat, ModelCard
from streamsense.models.exceptions import ModelIntegrityError

#: adapter kind -> (module:class, task, artifact formats it reads)
ADAPTERS: dict[str, tuple[str, str, tuple[ArtifactFormat, ...]]] = {
    "blazeface": ("streamsense.models.detection:BlazeFaceDetector", "detect", ("tflite",)),
    "centernet": (
        "streamsense.models.detection:CenterNetDetector",
        "detect",
        ("saved_model", "tflite"),
    ),
    "tfod": ("streamsense.models.detection:ObjectDetectionAPIDetector", "detect", ("saved_model",)),
    "selfie": ("streamsense.models.segmentation:SelfieSegmenter", "segment", ("tflite",)),
    "logits": ("streamsense.models.segmentation:LogitsSegmenter", "segment", ("saved_model",)),
    "keras_text": ("streamsense.models.sentiment:KerasSentiment", "sentiment", ("keras",)),
}


def adapter_class(kind: str) -> type[ModelAdapter[Any, Any]]:
    if kind not in ADAPTERS:
        msg = f"unknown adapter kind {kind[:40]!r}; known: {sorted(ADAPTERS)}"
        raise ModelIntegrityError(msg)
    module, _, name = ADAPTERS[kind][0].partition(":")
    cls: type[ModelAdapter[Any, Any]] = getattr(importlib.import_module(module), name)
    return cls


def create_adapter(card: ModelCard, artifact: Path) -> ModelAdapter[Any, Any]:
    """An (unloaded) adapter for ``card`` reading ``artifact``."""
    cls = adapter_class(card.adapter)
    _, task, formats = ADAPTERS[card.adapter]
    if card.task != task or card.format not in formats:
        msg = (
            f"adapter {card.adapter!r} serves {task} models stored as {formats}; "
            f"the card says {card.task} in {card.format}"
        )
        raise ModelIntegrityError(msg)
    return cls(card, artifact)
