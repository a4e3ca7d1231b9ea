"""Root of the ``streamsense`` CLI. Sub-commands live in their own modules and are mounted here."""

from __future__ import annotations

import logging

import typer

from streamsense.services.cli import analytics as analytics_cmd
from streamsense.services.cli import (
    bench,
    demo,
    local,
    model_ops,  # noqa: F401 - registers promote/rollback/history on models
    produce,
    samples,
    schemas_cmd,
    settings_cmd,
    topics,
    worker,
)
from streamsense.services.cli import feedback as feedback_cmd
from streamsense.services.cli import gateway as gateway_cmd
from streamsense.services.cli import learner as learner_cmd
from streamsense.services.cli import sink as sink_cmd
from streamsense.services.cli.entry import EXIT_USAGE, fail
from streamsense.services.cli.models import app as models_app

app = typer.Typer(
    name="streamsense",
    help="Streaming ML platform: Kafka in, TensorFlow workers, results through Redis.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(local.app, name="local")
app.add_typer(topics.app, name="topics")
app.add_typer(schemas_cmd.app, name="schemas")
app.add_typer(settings_cmd.app, name="settings")
app.add_typer(bench.app, name="bench")
app.add_typer(demo.app, name="demo")
app.add_typer(produce.app, name="produce")
app.add_typer(samples.app, name="samples")
app.add_typer(worker.app, name="worker")
app.add_typer(sink_cmd.app, name="sink")
app.add_typer(gateway_cmd.app, name="gateway")
app.add_typer(analytics_cmd.app, name="analytics")
app.add_typer(learner_cmd.app, name="learner")
app.add_typer(models_app, name="models")
app.command("feedback")(feedback_cmd.feedback)


#: what ``--log-level`` / STREAMSENSE_LOG_LEVEL accept (logging's level names)
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@app.callback()
def _root(
    log_level: str = typer.Option("INFO", "--log-level", envvar="STREAMSENSE_LOG_LEVEL"),
) -> None:
    """Logging is configured here, at the entry point, and nowhere else."""
    level = log_level.strip().upper()
    if level not in _LEVELS:
        msg = f"--log-level / STREAMSENSE_LOG_LEVEL={log_level!r}: use one of {', '.join(_LEVELS)}"
        raise fail(msg, EXIT_USAGE)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    app()
