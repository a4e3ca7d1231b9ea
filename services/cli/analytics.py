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
    from streamsense.services.analytics.exceptions import RulesError
    from streamsense.services.analytics.rules import load_rules
    from streamsense.services.analytics.service import AnalyticsService, build
    from streamsense.services.analytics.settings import AnalyticsSettings
    from streamsense.services.cli.entry import EXIT_USAGE, fail, run_service, settings_from

    options = {"analytics_rules": ("--rules", rules), "analytics_app_id": ("--app-id", app_id)}
    settings = settings_from(AnalyticsSettings, options)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:  # a bad rules file is a usage error (exit 2), found before anything waits on Kafka
        if settings.analytics_rules:
            load_rules(settings.analytics_rules)
    except RulesError as exc:
        raise fail(str(exc), EXIT_USAGE) from exc
    # Built inside run_service: the health port answers (red, "starting") and the log says what
    # it waits for while the topics are prepared on Kafka, for as long as Kafka does not answer.
    run_service(settings, lambda s: AnalyticsService(s, build(s)))
