"""``streamsense models promote|rollback|history``: rollout commands on the models CLI.

They are registered on :data:`streamsense.services.cli.models.app` when this module is imported.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from streamsense.models.exceptions import ModelError
from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import Topic
from streamsense.services.cli.entry import console as entry_console
from streamsense.services.cli.entry import fail, settings_from
from streamsense.services.cli.models import StoreOption
from streamsense.services.cli.models import app as models_app

if TYPE_CHECKING:
    from streamsense.services.settings import StreamsenseSettings

_LABELS = Annotated[
    int, typer.Option(help="recent labels read from labels.text to compare on (0: skip)")
]


def _settings_and_store(store: Path | None) -> tuple[StreamsenseSettings, ModelStore]:
    from streamsense.services.settings import StreamsenseSettings

    settings = settings_from(StreamsenseSettings, service_name="models-cli")
    return settings, ModelStore(store or settings.model_store_dir)


def _fail(message: str) -> typer.Exit:
    return fail(message)


@models_app.command()
def promote(
    name: Annotated[str, typer.Argument(help="model name")],
    version: Annotated[str, typer.Argument(help="version to make champion")],
    recent_labels: _LABELS = 500,
    tolerance: Annotated[
        float, typer.Option(help="accept a version at most this much less accurate")
    ] = 0.0,
    store: StoreOption = None,
) -> None:
    """Verify, load and compare VERSION with the champion on recent labels, then make it
    champion and announce it; a corrupt, mismatched or worse version is announced as
    rejected with the reason (exit 1) and the champion keeps serving."""
    from streamsense.services.exceptions import ServiceError
    from streamsense.services.kafka.model_updates import announce
    from streamsense.services.kafka.producer import Producer
    from streamsense.services.learner.exceptions import RolloutRejectedError
    from streamsense.services.learner.rollout import check_candidate, promotion, rejection
    from streamsense.services.learner.updates import read_recent_labels

    settings, model_store = _settings_and_store(store)
    console = entry_console()
    try:
        recent = []
        if recent_labels > 0:
            task = model_store.card(name, version).task  # ModelNotFoundError: nothing to reject
            recent = read_recent_labels(settings, {name, task}, recent_labels)
        producer = Producer(settings)
        try:
            card, evaluation = check_candidate(
                model_store, name, version, recent, tolerance=tolerance
            )
        except RolloutRejectedError as exc:
            announce(producer, settings, rejection(model_store, name, version, exc.reason))
            msg = f"{name}@{version} rejected: {exc.reason}"
            raise _fail(msg) from exc
        mv = promotion(model_store, card, evaluation, "streamsense models promote")
        announce(producer, settings, mv)
    except (ModelError, ServiceError) as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{name}@{version} is champion: {mv.reason}")


@models_app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="model name")],
    store: StoreOption = None,
) -> None:
    """Make the previous champion the champion again and announce it."""
    from streamsense.services.exceptions import ServiceError
    from streamsense.services.kafka.model_updates import announce
    from streamsense.services.kafka.producer import Producer
    from streamsense.services.learner.rollout import rollback as do_rollback
    from streamsense.services.learner.updates import read_updates

    settings, model_store = _settings_and_store(store)
    try:
        mv = do_rollback(model_store, name, read_updates(settings, name))
        announce(Producer(settings), settings, mv)
    except (ModelError, ServiceError) as exc:
        raise _fail(str(exc)) from exc
    entry_console().print(f"{name}@{mv.model_version} is champion again ({mv.reason})")


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


@models_app.command()
def history(
    name: Annotated[str, typer.Argument(help="model name")],
    store: StoreOption = None,
) -> None:
    """Announcements of NAME on models.updates, and its versions in the store."""
    from streamsense.services.learner.exceptions import LearnerError
    from streamsense.services.learner.updates import read_updates

    settings, model_store = _settings_and_store(store)
    console = entry_console()
    try:
        announcements = read_updates(settings, name)
    except LearnerError as exc:
        console.print(f"models.updates unreadable: {exc}", style="yellow")
        announcements = []
    table = Table(title=f"{name} on {settings.topic(Topic.MODEL_UPDATES)}")
    for column in ("time (UTC)", "version", "stage", "sha256", "reason"):
        table.add_column(column, overflow="fold", no_wrap=column != "reason")
    styles = {"champion": "green", "rejected": "red", "candidate": "yellow", "archived": "dim"}
    for mv in announcements:
        table.add_row(
            _when(mv.created_ns),
            mv.model_version,
            Text(mv.stage, style=styles.get(mv.stage, "")),
            mv.sha256[:8],
            mv.reason or "",
        )
    console.print(table)
    try:
        champion = model_store.champion(name)
        versions = model_store.versions(name)
        stored = Table(title=f"{name} in {model_store.root}")
        for column in ("version", "created (UTC)", "sha256", "metrics", "notes"):
            stored.add_column(column, overflow="fold")
        for version in versions:
            card = model_store.card(name, version)
            scores = ", ".join(f"{k}={v:.3f}" for k, v in sorted(card.metrics.items())[:4])
            stored.add_row(
                f"{version} *" if version == champion else version,
                card.created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                card.sha256[:8],
                scores,
                card.source.notes or "",
            )
    except ModelError as exc:
        raise _fail(str(exc)) from exc
    console.print(stored)
    console.print("* = champion in the store")
