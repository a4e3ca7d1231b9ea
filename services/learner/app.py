"""Wire the learner from small parts: store -> trainer -> online learner -> handler -> loop."""

from __future__ import annotations

import logging

from streamsense.models.exceptions import ModelNotFoundError
from streamsense.models.store import ModelStore
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.model_updates import ModelUpdatesFollower
from streamsense.services.learner.base import load_trainer
from streamsense.services.learner.handler import Labeled, LearnerHandler
from streamsense.services.learner.online import OnlineLearner
from streamsense.services.learner.settings import LearnerSettings
from streamsense.services.runner import serve

log = logging.getLogger(__name__)


def build_learner(
    settings: LearnerSettings,
    store: ModelStore | None = None,
    *,
    keep_trace: bool = False,
    follow_updates: bool = True,
) -> tuple[BatchLoop[list[Labeled]], LearnerHandler]:
    store = store or ModelStore(settings.model_store_dir)
    name = settings.model_name
    version = store.champion(name)
    if version is None:
        msg = f"model {name!r} has no champion in {store.root}; run `streamsense models fetch`"
        raise ModelNotFoundError(msg)
    card, champion = load_trainer(store, name, version, settings.learner_learning_rate)
    if card.task != settings.learner_task:
        msg = f"{name} is a {card.task} model; this learner learns {settings.learner_task}"
        raise ValueError(msg)
    learner = OnlineLearner(
        name,
        champion,
        version,
        training=settings.training(),
        checks=settings.checks(),
        policy=settings.policy(),
        keep_trace=keep_trace,
    )
    updates = ModelUpdatesFollower(settings, name, from_start=False) if follow_updates else None
    handler = LearnerHandler(settings, store, learner, updates)
    config = LoopConfig(
        topics=[settings.labels_topic],
        group_id=settings.group_id,
        max_batch=settings.learner_max_batch,
        max_wait_ms=settings.learner_max_wait_ms,
    )
    loop = BatchLoop(settings, config, handler)  # announcements in the loop's transactions
    log.info(
        "learner for %s@%s on %s (group %s): margin %.3f on >= %d labels, every >= %.0f s",
        name,
        version,
        settings.labels_topic,
        settings.group_id,
        settings.learner_margin,
        settings.learner_min_samples,
        settings.learner_min_interval_s,
    )
    return loop, handler


def run_learner(settings: LearnerSettings) -> None:
    """Run until SIGTERM/SIGINT, with ``/healthz`` (loop + learner state) and ``/metrics``."""
    loop, _ = build_learner(settings)
    serve(settings, loop)
