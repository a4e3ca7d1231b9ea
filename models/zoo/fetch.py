"""Build the default zoo into a model store: download, check, convert or train, store.

Idempotent: a model whose version is already in the store with an artifact matching its
card's sha256 is skipped without touching the network; a corrupt copy is rebuilt.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from streamsense.models.exceptions import ModelError, ModelIntegrityError, ModelNotFoundError
from streamsense.models.store import ModelStore
from streamsense.models.zoo import ZOO
from streamsense.models.zoo.base import BuildContext, ZooModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchOutcome:
    name: str
    version: str
    status: Literal["built", "skipped", "repaired"]
    seconds: float
    sha256: str


def _status(store: ModelStore, model: ZooModel) -> Literal["missing", "ok", "corrupt"]:
    try:
        store.verify(model.name, model.version)
    except ModelNotFoundError:
        return "missing"
    except ModelIntegrityError as exc:
        log.warning("%s", exc)
        return "corrupt"
    return "ok"


def fetch_zoo(
    store: ModelStore | Path,
    downloads: Path,
    *,
    only: Sequence[str] | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> list[FetchOutcome]:
    """Build every zoo model (or those named in ``only``) into ``store``.

    Downloads are cached in ``downloads``. The first version of a model becomes its champion; an
    existing champion is left alone. Raises :class:`~streamsense.models.exceptions.FetchError` with
    the reason when a registry cannot be reached or a package does not hold what it should.
    """
    store = store if isinstance(store, ModelStore) else ModelStore(store)
    models = [m for m in ZOO if only is None or m.name in only]
    unknown = sorted(set(only or ()) - {m.name for m in ZOO})
    if unknown:
        msg = f"unknown zoo models {unknown}; the zoo has {[m.name for m in ZOO]}"
        raise ModelError(msg)
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[model]:<18}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    outcomes = []
    with Progress(*columns, console=console, disable=not progress, transient=False) as bars:
        for model in models:
            task = bars.add_task("checking store", total=model.steps, model=model.name)
            outcomes.append(_fetch_one(store, downloads, model, bars, task))
    return outcomes


def _fetch_one(
    store: ModelStore, downloads: Path, model: ZooModel, bars: Progress, task: TaskID
) -> FetchOutcome:
    start = time.perf_counter()
    state = _status(store, model)
    if state == "ok":
        bars.update(task, completed=model.steps, description="up to date (sha256 ok)")
        return _kept(store, model)

    def step(description: str, advance: float = 1.0) -> None:
        bars.update(task, advance=advance, description=description)

    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".build-{model.name}-", dir=store.root) as tmp:
        built = model.build(BuildContext(downloads=downloads, workdir=Path(tmp), step=step))
        try:
            store.put(
                model.name, model.version, built.artifact, built.card, replace=state == "corrupt"
            )
        except ModelError:
            if _status(store, model) != "ok":
                raise
            # Another process (a parallel test session, a second `fetch`) stored it first.
            bars.update(task, completed=model.steps, description="stored by another process")
            return _kept(store, model)
    _ensure_champion(store, model)
    seconds = time.perf_counter() - start
    bars.update(task, completed=model.steps, description=f"stored {built.card.sha256[:12]}")
    status: Literal["built", "repaired"] = "repaired" if state == "corrupt" else "built"
    log.info("%s %s/%s in %.1f s", status, model.name, model.version, seconds)
    return FetchOutcome(model.name, model.version, status, seconds, built.card.sha256)


def _kept(store: ModelStore, model: ZooModel) -> FetchOutcome:
    """The outcome for a model already in the store (made champion if none is set)."""
    _ensure_champion(store, model)
    card = store.card(model.name, model.version)
    return FetchOutcome(model.name, model.version, "skipped", 0.0, card.sha256)


def _ensure_champion(store: ModelStore, model: ZooModel) -> None:
    if store.champion(model.name) is None:
        store.set_champion(model.name, model.version)
