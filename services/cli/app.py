"""Root of the ``streamsense`` CLI. Sub-commands live in their own modules and are mounted here."""

from __future__ import annotations

import logging

import typer

from services.cli import bench, demo, local, schemas_cmd, topics

app = typer.Typer(
    name="streamsense",
    help="Streaming ML platform: Kafka in, TensorFlow workers, results through Redis.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(local.app, name="local")
app.add_typer(topics.app, name="topics")
app.add_typer(schemas_cmd.app, name="schemas")
app.add_typer(bench.app, name="bench")
app.add_typer(demo.app, name="demo")


@app.callback()
def _root(
    log_level: str = typer.Option("INFO", "--log-level", envvar="STREAMSENSE_LOG_LEVEL"),
) -> None:
    """Logging is configured here, at the entry point, and nowhere else."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    app()
