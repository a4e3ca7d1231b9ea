"""Text sentiment: ``predict_batch(texts) -> list[SentimentOutput]``.

The Keras model contains its own ``TextVectorization`` layer, so it takes raw strings. It is
served through a ``tf.function`` with a fixed ``[None]`` string signature (see
:class:`streamsense.models.runtime.KerasRunner`); ``model.predict`` per call is ~200x slower.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from streamsense.models.base import ModelAdapter, SentimentOutput
from streamsense.models.exceptions import BadInputError, ModelOutputError, SignatureError
from streamsense.models.runtime import KerasRunner

log = logging.getLogger(__name__)

#: Longest text accepted (the ``SentimentResult.text`` limit).
MAX_TEXT_CHARS = 65536
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


def clean_text(text: str) -> str:
    """NFC-normalized text with control characters (C0, C1, line/paragraph separators) as
    spaces. Training and serving both apply it: a vocabulary term containing a character
    that splits lines would not survive saving the model."""
    return _CONTROL.sub(" ", unicodedata.normalize("NFC", text))


def check_texts(items: Sequence[object]) -> list[str]:
    """Non-empty ``str`` items of at most MAX_TEXT_CHARS; BadInputError otherwise."""
    out = []
    for i, text in enumerate(items):
        if not isinstance(text, str):
            msg = f"text {i}: expected str, got {type(text).__name__}"
            raise BadInputError(msg)
        if not text.strip():
            msg = f"text {i}: empty text"
            raise BadInputError(msg)
        if len(text) > MAX_TEXT_CHARS:
            msg = f"text {i}: {len(text)} characters, at most {MAX_TEXT_CHARS} are accepted"
            raise BadInputError(msg)
        out.append(text)
    return out


def not_distributions(probs: np.ndarray, tolerance: float = 1e-3) -> list[tuple[int, str]]:
    """Rows of ``probs`` that are not probability distributions, with why: a model emitting
    NaN, inf, logits or negative scores must not publish them as class probabilities."""
    finite = np.isfinite(probs).all(axis=1)
    with np.errstate(invalid="ignore"):
        shaped = (probs.min(axis=1) >= -tolerance) & (np.abs(probs.sum(axis=1) - 1.0) <= tolerance)
    return [
        (int(i), f"is {'not a probability distribution' if finite[i] else 'not finite'} "
                 f"({probs[i].tolist()})")
        for i in np.flatnonzero(~(finite & shaped))
    ]  # fmt: skip


class KerasSentiment(ModelAdapter[str, SentimentOutput]):
    """A Keras text classifier with softmax outputs over ``card.labels``."""

    task = "sentiment"

    def _load(self) -> None:
        self._runner = KerasRunner(self.artifact)
        if self._runner.input.dtype != "string":
            msg = f"{self.artifact}: input must be a string tensor, got {self._runner.input.dtype}"
            raise SignatureError(msg)
        probe = self._runner.run(np.asarray(["ok"], dtype=object))
        if probe.shape != (1, len(self.labels)):
            msg = f"{self.artifact}: output {probe.shape} does not match labels {self.labels}"
            raise SignatureError(msg)
        if bad := not_distributions(probe):
            msg = f"{self.artifact}: refused, its output on a sample text {bad[0][1]}"
            raise SignatureError(msg)

    def _check(self, items: Sequence[str]) -> list[str]:
        return check_texts(items)

    def sample_input(self) -> str:
        return "the stream kept up all day and nothing broke"

    def _predict_chunk(self, items: list[str]) -> list[SentimentOutput]:
        cleaned = [clean_text(t) for t in items]
        probs = self._runner.run(np.asarray(cleaned, dtype=object)).astype(np.float64)
        if bad := not_distributions(probs):
            row, why = bad[0]
            msg = f"text {row}: the model's output {why}"
            raise ModelOutputError(msg)
        best = probs.argmax(axis=1)
        labels = self.labels
        return [
            SentimentOutput(
                label=labels[int(k)],
                probs={label: float(p) for label, p in zip(labels, row, strict=True)},
            )
            for k, row in zip(best, probs, strict=True)
        ]
