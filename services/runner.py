"""How every long-running service runs: ``/healthz`` + ``/metrics``, SIGTERM/SIGINT, drain.

A service is anything with ``run`` (blocks until stopped), ``stop`` (ask it to finish its
in-flight work, commit and return; safe to call from a signal handler) and ``health``. The
batch-loop services, the sink, the gateway, the analytics app and the producers all run through
:func:`serve` and :func:`stop_on_signals`; nothing else installs a signal handler.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Protocol

from streamsense.services.observability.health import HealthCheck, HealthServer
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Service(Protocol):
    def run(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> tuple[bool, dict[str, Any]]: ...


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Within the block, the first SIGTERM/SIGINT calls ``stop`` (finish, flush, commit); a
    second SIGINT interrupts at once. The previous handlers come back on exit."""
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    stopping = False

    def _handle(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stopping = True
        log.info("%s: finishing in-flight work, then stopping", signal.Signals(signum).name)
        stop()

    for s in _SIGNALS:
        signal.signal(s, _handle)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def start_health(settings: StreamsenseSettings, check: HealthCheck) -> HealthServer | None:
    """Serve ``/healthz`` and ``/metrics`` when ``STREAMSENSE_METRICS_PORT`` is set."""
    if settings.metrics_port is None:
        return None
    return HealthServer(check, settings.metrics_host, settings.metrics_port).start()


def serve(settings: StreamsenseSettings, service: Service) -> None:
    """Run ``service`` until it ends or a signal stops it, with its health endpoint."""
    health = start_health(settings, service.health)
    try:
        with stop_on_signals(service.stop):
            service.run()
    finally:
        if health is not None:
            health.stop()
