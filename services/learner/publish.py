"""Writing a trained version into the model store and describing it on ``models.updates``.

A version is written atomically (:meth:`streamsense.models.store.ModelStore.put` checks the card's
sha256 against the artifact and renames the assembled directory into place), then the champion
pointer is switched, then the version is announced; workers hot-swap it from the announcement and
any service that starts later reads the champion pointer.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamsense.models.card import ModelCard
from streamsense.models.digest import artifact_sha256
from streamsense.models.exceptions import ModelError
from streamsense.models.store import ModelStore
from streamsense.schemas.model_updates import ModelVersion, Stage
from streamsense.schemas.results import SourceRef
from streamsense.services.learner.base import TrainingAdapter


def announcement(
    store: ModelStore,
    card: ModelCard,
    stage: Stage,
    reason: str | None,
    metrics: dict[str, float] | None = None,
) -> ModelVersion:
    path = store.root / card.name / card.version / card.artifact
    return ModelVersion(
        name=card.name,
        model_version=card.version,
        task=card.task,
        uri=path.absolute().as_uri(),
        sha256=card.sha256,
        metrics=dict(card.metrics if metrics is None else metrics),
        stage=stage,
        reason=None if reason is None else reason[:1000],
        created_ns=time.time_ns(),
    )


def store_trained(
    store: ModelStore,
    trainer: TrainingAdapter[Any],
    parent: ModelCard,
    metrics: dict[str, float],
    notes: str,
    attempts: int = 3,
    learned_until: SourceRef | None = None,
) -> ModelCard:
    """Save ``trainer``'s model as the next version of ``parent.name`` and make it champion.

    ``learned_until`` (the last label it learned) goes into the card: a learner that starts
    from this version after a crash announces it again when it reads that label again, i.e.
    when the round that held its first announcement was never committed."""
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".learner-{parent.name}-", dir=store.root) as tmp:
        artifact = trainer.save(Path(tmp))
        sha = artifact_sha256(artifact)
        for attempt in range(attempts):
            version = store.next_version(parent.name)
            card = parent.model_copy(
                update={
                    "version": version,
                    "artifact": artifact.name,
                    "sha256": sha,
                    "metrics": metrics,
                    "source": parent.source.model_copy(
                        update={
                            "kind": "trained",
                            "notes": notes[:1000],
                            "learned_until": learned_until,
                        }
                    ),
                    "description": f"{parent.description} Online update of {parent.version}."
                    if parent.description
                    else f"Online update of {parent.name}/{parent.version}.",
                    "created": datetime.now(UTC),
                }
            )
            try:
                store.put(
                    parent.name, version, artifact, ModelCard.model_validate(card.model_dump())
                )
                break
            except ModelError:
                if attempt == attempts - 1 or version not in store.versions(parent.name):
                    raise  # not a race with another writer of the same version number
    store.set_champion(parent.name, card.version)
    return card
