"""Run the analytics app: topics, rules, health endpoint, the Faust worker, SIGTERM."""

from __future__ import annotations

import logging

import faust

from streamsense.services.analytics.app import AnalyticsApp
from streamsense.services.analytics.redis_out import RedisPublisher
from streamsense.services.analytics.rules import RuleSet, load_rules
from streamsense.services.analytics.settings import AnalyticsSettings
from streamsense.services.analytics.topology import prepare_topics
from streamsense.services.runner import start_health

log = logging.getLogger(__name__)


def build(settings: AnalyticsSettings) -> AnalyticsApp:
    """Everything but the worker: rules validated, topics created, the Faust app wired."""
    rules = load_rules(settings.analytics_rules) if settings.analytics_rules else RuleSet()
    layout = prepare_topics(settings)
    settings.datadir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    publisher = None
    if settings.analytics_redis_enabled:
        publisher = RedisPublisher(
            settings.redis_url.get_secret_value(),
            prefix=settings.analytics_redis_prefix,
            alerts_maxlen=settings.analytics_alerts_maxlen,
            max_pending_alerts=settings.analytics_redis_max_pending,
            service=settings.service_name,
        )
    log.info(
        "analytics %s: %d rules, windows %gs tumbling / %gs every %gs hopping, %s",
        settings.app_id, len(rules.rules), settings.analytics_tumbling_s,
        settings.analytics_hopping_size_s, settings.analytics_hopping_step_s,
        settings.analytics_processing_guarantee,
    )  # fmt: skip
    if settings.analytics_processing_guarantee == "exactly_once":
        log.warning(
            "processing_guarantee=exactly_once is experimental here: not covered by the tests, "
            "slower to recover after a crash (docs/analytics.md); at_least_once with the "
            "offset-idempotent tables is the tested mode"
        )
    return AnalyticsApp(settings, rules, layout, publisher)


def run(settings: AnalyticsSettings, analytics: AnalyticsApp | None = None) -> None:
    """Run until SIGTERM/SIGINT: the agents drain their buffers, offsets are committed, the
    last Redis writes are flushed; then the process exits 0 (``SystemExit`` from Faust)."""
    if analytics is None:
        analytics = build(settings)
    health = start_health(settings, analytics.health)
    worker = faust.Worker(
        analytics.app,
        loglevel=settings.log_level,
        override_logging=False,  # logging is configured by the CLI entry point
        redirect_stdouts=False,
    )
    worker.spinner = None  # a progress spinner on stdout is noise in a service's logs
    try:
        worker.execute_from_commandline()
    finally:
        if health is not None:
            health.stop()
