"""Run the analytics app: topics, rules, health endpoint, the Faust worker, SIGTERM."""

from __future__ import annotations

import logging
import signal
from typing import Any

import faust

from streamsense.services.analytics.app import AnalyticsApp
from streamsense.services.analytics.redis_out import RedisPublisher
from streamsense.services.analytics.rules import RuleSet, load_rules
from streamsense.services.analytics.settings import AnalyticsSettings
from streamsense.services.analytics.topology import wait_for_topics
from streamsense.services.serving.keys import RedisKeys

log = logging.getLogger(__name__)


def build(settings: AnalyticsSettings) -> AnalyticsApp:
    """Everything but the worker: rules validated, topics created, the Faust app wired."""
    rules = load_rules(settings.analytics_rules) if settings.analytics_rules else RuleSet()
    layout = wait_for_topics(settings)
    settings.datadir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    publisher = None
    if settings.analytics_redis_enabled:
        publisher = RedisPublisher(
            settings.redis_url.get_secret_value(),
            keys=RedisKeys(settings.redis_prefix),
            alerts_maxlen=settings.analytics_alerts_maxlen,
            max_pending_alerts=settings.analytics_redis_max_pending,
            service=settings.service_name,
            hash_ttl_s=settings.analytics_source_ttl_s,
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


class AnalyticsService:
    """The Faust worker as a service for the runner. Faust's own signal handlers are not
    installed: ``stop`` (the runner calls it on SIGTERM/SIGINT) asks the worker to stop as
    they would; the agents drain their buffers, offsets are committed and the last Redis
    writes flushed."""

    def __init__(self, settings: AnalyticsSettings, analytics: AnalyticsApp) -> None:
        self.analytics = analytics
        self.worker = _Worker(
            analytics.app,
            loglevel=settings.log_level,
            override_logging=False,  # logging is configured by the CLI entry point
            redirect_stdouts=False,
        )
        self.worker.spinner = None  # a progress spinner on stdout is noise in a service's logs

    def run(self) -> None:
        """Until stopped; Faust ends with ``SystemExit``, which ends here (0 for a clean stop)."""
        try:
            self.worker.execute_from_commandline()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise

    def stop(self) -> None:
        self.worker.request_stop()

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.analytics.health()


class _Worker(faust.Worker):
    def install_signal_handlers(self) -> None:
        """The runner owns the signals (see :meth:`request_stop`)."""

    def request_stop(self) -> None:
        """Stop as SIGTERM would; safe from a signal handler or another thread."""
        self.loop.call_soon_threadsafe(self._schedule_shutdown, signal.SIGTERM)
