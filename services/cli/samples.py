"""``streamsense samples make DIR``: the demo's sample video and log, built offline."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from streamsense.services.cli.entry import console as entry_console
from streamsense.services.cli.entry import fail
from streamsense.services.exceptions import ServiceError

app = typer.Typer(help="Sample data for demos and tests (offline, deterministic).")
console = entry_console()


@app.command()
def make(
    out: Path = typer.Argument(..., help="directory to write sample.mp4, sample.log, labels.jsonl"),
    seconds: float = typer.Option(15.0, min=1.0, max=600.0, help="video length"),
    fps: int = typer.Option(10, min=1, max=60),
    lines: int = typer.Option(300, min=1, max=1_000_000, help="log lines"),
    seed: int = typer.Option(7, help="same seed, same log"),
) -> None:
    """Compose a 1280x720 video from scikit-image's photos and a log with sentiment."""
    from streamsense.services.samples.make import make_samples

    try:
        with console.status("composing the sample video..."):
            result = make_samples(out, seconds=seconds, fps=fps, lines=lines, seed=seed)
    except (ServiceError, OSError) as exc:
        raise fail(str(exc)) from exc
    table = Table("file", "content")
    video = result["sample.mp4"]
    desc = (f"{video['width']}x{video['height']}, {video['frames']} frames at {video['fps']} fps, "
            f"{video['bytes']:,} bytes")  # fmt: skip
    table.add_row(str(out / "sample.mp4"), desc)
    labels = ", ".join(f"{k} {v}" for k, v in sorted(result["sample.log"]["labels"].items()))
    table.add_row(str(out / "sample.log"), f"{result['sample.log']['lines']} lines ({labels})")
    table.add_row(str(out / "labels.jsonl"), f"{result['labels.jsonl']['lines']} LabeledText")
    console.print(table)
