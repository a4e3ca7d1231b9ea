"""``streamsense analytics``: the Faust analytics app (windows, alerts) over the result topics."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

app = typer.Typer(help="Windowed analytics and alerts over the result topics (Faust).")

#: Faust, mode and aiokafka log every rebalance step at INFO; above DEBUG only their warnings.
_CHATTY = ("faust", "mode", "aiokafka")


@app.callback(invoke_without_command=True)
def analytics(
    rules: Path = typer.Option(
        None,
        "--rules",
        help="alert rules YAML (see deploy/alerts.example.yaml)",
        exists=True,
        dir_okay=False,
    ),
    app_id: str = typer.Option(None, "--app-id", help="Faust app id (consumer group)"),
) -> None:
    """Run the analytics app until SIGTERM (settings: STREAMSENSE_ANALYTICS_*, see docs)."""
    from pydantic import ValidationError

    from streamsense.services.analytics.service import build, run
    from streamsense.services.analytics.settings import AnalyticsSettings
    from streamsense.services.exceptions import ServiceError

    overrides: dict[str, object] = {}
    if rules is not None:
        overrides["analytics_rules"] = rules
    if app_id is not None:
        overrides["analytics_app_id"] = app_id
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        settings = AnalyticsSettings(**overrides)  # type: ignore[arg-type]
        analytics = build(settings)
    except (ServiceError, ValidationError) as exc:  # bad settings or rules, Kafka unreachable
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    run(settings, analytics)
