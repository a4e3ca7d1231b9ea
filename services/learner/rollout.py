"""Operator rollout: promote a stored version, roll back to the previous champion.

``promote`` refuses a version whose artifact does not match its sha256, that does not load
or whose signature does not fit (wrong task or labels), or that is worse than the champion on
recent labels; the refusal is announced on ``models.updates`` as ``rejected`` with the reason
and the champion keeps serving. ``rollback`` announces the previous champion again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamsense.models.base import ModelAdapter
from streamsense.models.card import ModelCard
from streamsense.models.exceptions import ModelError, ModelIntegrityError, ModelNotFoundError
from streamsense.models.store import ModelStore
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.text import LabeledText
from streamsense.services.learner.exceptions import LearnerError, RolloutRejectedError
from streamsense.services.learner.publish import announcement

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    n: int
    candidate: float
    champion: float


def accuracy(adapter: ModelAdapter[Any, Any], examples: Sequence[LabeledText]) -> float:
    """Share of ``examples`` whose label the adapter predicts (text classifiers)."""
    outputs = adapter.predict_batch([ex.text for ex in examples])
    hits = sum(1 for out, ex in zip(outputs, examples, strict=True) if out.label == ex.label)
    return hits / len(examples)


def check_candidate(
    store: ModelStore,
    name: str,
    version: str,
    recent: Sequence[LabeledText] = (),
    *,
    tolerance: float = 0.0,
    min_labels: int = 50,
) -> tuple[ModelCard, Evaluation | None]:
    """The verified card (and an evaluation on ``recent``) of a version fit to serve;
    :class:`RolloutRejectedError` with the reason otherwise."""
    try:
        card = store.verify(name, version)
        candidate = store.load(name, version)
    except ModelNotFoundError:
        raise
    except ModelError as exc:
        msg = f"{type(exc).__name__}: {exc}"
        raise RolloutRejectedError(msg) from exc
    champion_version = store.champion(name)
    if champion_version is None or champion_version == version:
        return card, None
    champion_card = store.card(name, champion_version)
    if (card.task, card.labels) != (champion_card.task, champion_card.labels):
        msg = (
            f"signature mismatch: {card.task} {card.labels} does not replace the champion's "
            f"{champion_card.task} {champion_card.labels}"
        )
        raise RolloutRejectedError(msg)
    usable = [ex for ex in recent if ex.label in card.labels and ex.text.strip()]
    if card.task != "sentiment" or len(usable) < min_labels:
        return card, None
    champion = store.load(name, champion_version)
    ev = Evaluation(len(usable), accuracy(candidate, usable), accuracy(champion, usable))
    if ev.candidate < ev.champion - tolerance:
        msg = (
            f"worse than champion {champion_version}: accuracy {ev.candidate:.3f} vs "
            f"{ev.champion:.3f} on the {ev.n} most recent labels"
        )
        raise RolloutRejectedError(msg)
    return card, ev


def rejection(store: ModelStore, name: str, version: str, reason: str) -> ModelVersion:
    """The ``rejected`` announcement of a version (its card's sha256, or the artifact's own
    digest when even the card is unreadable)."""
    try:
        card = store.card(name, version)
    except ModelIntegrityError:
        return ModelVersion(
            name=name,
            model_version=version,
            task="sentiment",
            uri=(store.root / name / version).absolute().as_uri(),
            sha256="0" * 64,
            stage="rejected",
            reason=reason[:1000],
            created_ns=time.time_ns(),
        )
    return announcement(store, card, "rejected", reason)


def promotion(
    store: ModelStore, card: ModelCard, evaluation: Evaluation | None, who: str
) -> ModelVersion:
    """Switch the champion pointer to ``card`` and describe it for ``models.updates``."""
    previous = store.champion(card.name)
    store.set_champion(card.name, card.version)
    reason = f"promoted by {who} (was {previous})"
    metrics = dict(card.metrics)
    if evaluation is not None:
        reason += (
            f"; recent-label accuracy {evaluation.candidate:.3f} vs champion "
            f"{evaluation.champion:.3f} on {evaluation.n}"
        )
        metrics.update(
            recent_accuracy=evaluation.candidate,
            recent_champion_accuracy=evaluation.champion,
            recent_samples=float(evaluation.n),
        )
    return announcement(store, card, "champion", reason, metrics)


def previous_champion(store: ModelStore, name: str, history: Sequence[ModelVersion]) -> str:
    """The champion announced before the current one, else the store's previous version.

    Versions whose artifact no longer verifies, or whose last announcement is ``rejected``,
    are skipped. Like ``kubectl rollout undo``, rolling back twice undoes the rollback.
    """
    current = store.champion(name)
    if current is None:
        msg = f"model {name!r} has no champion to roll back from"
        raise LearnerError(msg)
    announced: list[str] = []
    last_stage = {mv.model_version: mv.stage for mv in history if mv.name == name}
    for mv in history:
        if mv.name == name and mv.stage == "champion":
            if announced and announced[-1] == mv.model_version:
                continue
            announced.append(mv.model_version)
    # the champions before the last announcement of the current one, newest first
    if current in announced:
        cut = len(announced) - 1 - announced[::-1].index(current)
        candidates = announced[:cut][::-1]
    else:
        candidates = announced[::-1]
    versions = store.versions(name)
    if current in versions:
        candidates += versions[: versions.index(current)][::-1]
    for version in candidates:
        if version == current or version not in versions or last_stage.get(version) == "rejected":
            continue
        try:
            store.verify(name, version)
        except ModelError as exc:
            log.warning("not rolling back to %s@%s: %s", name, version, exc)
            continue
        return version
    msg = f"model {name!r} has no earlier intact version than {current}"
    raise LearnerError(msg)


def rollback(store: ModelStore, name: str, history: Sequence[ModelVersion]) -> ModelVersion:
    current = store.champion(name)
    version = previous_champion(store, name, history)
    store.set_champion(name, version)
    card = store.card(name, version)
    return announcement(store, card, "champion", f"rollback from {current}")
