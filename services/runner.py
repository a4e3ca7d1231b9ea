"""Run a service built on the batch loop: health/metrics endpoint, SIGTERM drain, clean exit."""

from __future__ import annotations

import logging
from typing import Any

from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.observability.health import HealthCheck, HealthServer
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)


def start_health(settings: StreamsenseSettings, check: HealthCheck) -> HealthServer | None:
    """Serve ``/healthz`` and ``/metrics`` when ``STREAMSENSE_METRICS_PORT`` is set."""
    if settings.metrics_port is None:
        return None
    return HealthServer(check, settings.metrics_host, settings.metrics_port).start()


def run_loop_service(settings: StreamsenseSettings, loop: BatchLoop[Any]) -> None:
    """Run ``loop`` until SIGTERM/SIGINT; in-flight work is finished and offsets committed."""
    loop.install_signal_handlers()
    health = start_health(settings, loop.health)
    log.info(
        "%s running (group %s, topics %s)",
        settings.service_name,
        loop.config.group_id,
        ", ".join(loop.config.topics),
    )
    try:
        loop.run()
    finally:
        if health is not None:
            health.stop()
