"""``streamsense worker detect|segment|sentiment``."""

from __future__ import annotations

import typer

from streamsense.schemas.catalog import Task
from streamsense.services.cli.entry import run_service, settings_from

app = typer.Typer(help="Inference workers: consume inputs, run a model, produce results.")


def _run(
    task: Task,
    model: str | None,
    max_batch: int | None,
    max_wait_ms: int | None,
    max_frame_age_ms: int | None,
) -> None:
    from streamsense.services.workers.app import build_worker
    from streamsense.services.workers.settings import WorkerSettings

    options = {
        "worker_model": ("--model", model),
        "worker_max_batch": ("--max-batch", max_batch),
        "worker_max_wait_ms": ("--max-wait-ms", max_wait_ms),
        "worker_max_frame_age_ms": ("--max-frame-age-ms", max_frame_age_ms),
    }
    settings = settings_from(WorkerSettings, options, task=task, service_name=f"worker-{task}")
    run_service(settings, lambda s: build_worker(s, check_topics=True)[0])


_MODEL = typer.Option(None, "--model", help="NAME or NAME@VERSION (default: the task's zoo model)")
_BATCH = typer.Option(None, "--max-batch", help="default: the model's best measured batch")
_WAIT = typer.Option(None, "--max-wait-ms", help="how long to wait to fill a batch")
_AGE = typer.Option(None, "--max-frame-age-ms", help="skip frames older than this (0: never)")


@app.command()
def detect(
    model: str = _MODEL,
    max_batch: int = _BATCH,
    max_wait_ms: int = _WAIT,
    max_frame_age_ms: int = _AGE,
) -> None:
    """Object/face detection on `frames` -> `results.detections`."""
    _run("detect", model, max_batch, max_wait_ms, max_frame_age_ms)


@app.command()
def segment(
    model: str = _MODEL,
    max_batch: int = _BATCH,
    max_wait_ms: int = _WAIT,
    max_frame_age_ms: int = _AGE,
) -> None:
    """Person segmentation on `frames` -> `results.segments`."""
    _run("segment", model, max_batch, max_wait_ms, max_frame_age_ms)


@app.command()
def sentiment(model: str = _MODEL, max_batch: int = _BATCH, max_wait_ms: int = _WAIT) -> None:
    """Sentiment on `text` -> `results.sentiment`."""
    _run("sentiment", model, max_batch, max_wait_ms, None)
