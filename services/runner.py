"""How every long-running service runs: ``/healthz`` + ``/metrics``, SIGTERM/SIGINT, drain.

A service is anything with ``run`` (blocks until stopped), ``stop`` (ask it to finish its
in-flight work, commit and return; safe to call from a signal handler) and ``health``. The
batch-loop services, the sink, the gateway, the analytics app and the producers all run through
:func:`serve` and :func:`stop_on_signals`; nothing else installs a signal handler.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Protocol, TypeVar

from streamsense.services import heap
from streamsense.services.exceptions import ConfigError
from streamsense.services.observability.health import HealthCheck, HealthServer
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Service(Protocol):
    def run(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> tuple[bool, dict[str, Any]]: ...


S = TypeVar("S", bound=Service)


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Within the block, the first SIGTERM/SIGINT calls ``stop`` (finish, flush, commit); a
    second SIGINT interrupts at once. The previous handlers come back on exit."""
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    stopping = False

    def _handle(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        name = signal.Signals(signum).name
        if stopping:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            log.info("%s again: still finishing in-flight work (a second SIGINT interrupts)", name)
            return
        stopping = True
        log.info("%s: finishing in-flight work, then stopping", name)
        stop()

    for s in _SIGNALS:
        signal.signal(s, _handle)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def start_health(settings: StreamsenseSettings, check: HealthCheck) -> HealthServer | None:
    """Serve ``/healthz`` and ``/metrics`` when ``STREAMSENSE_METRICS_PORT`` is set; a port
    that cannot be bound is a ConfigError naming it."""
    if settings.metrics_port is None:
        return None
    host, port = settings.metrics_host, settings.metrics_port
    try:
        return HealthServer(check, host, port).start()
    except OSError as exc:
        msg = (
            f"STREAMSENSE_METRICS_PORT={port}: cannot listen on {host}:{port} "
            f"({exc.strerror or exc}); another process may hold it: pick another port, or 0 for "
            "any free one"
        )
        raise ConfigError(msg) from exc


class StartingHealth:
    """The health check while a service is being built (e.g. loading a model): red with the
    stage, then whatever the service says once it exists."""

    def __init__(self) -> None:
        self.service: Service | None = None
        self.stage = "starting"

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        if self.service is None:
            return False, {"problems": [self.stage]}
        return self.service.health()


def serve(
    settings: StreamsenseSettings, service: Service, health: HealthServer | None = None
) -> None:
    """Run ``service`` until it ends or a signal stops it, with its health endpoint (started
    here unless the caller started it already)."""
    if health is None:
        health = start_health(settings, service.health)
    heap.freeze()  # built (imports, model): keep full collections off it
    try:
        with stop_on_signals(service.stop):
            service.run()
    finally:
        if health is not None:
            health.stop()


@contextmanager
def running(service: S) -> Iterator[S]:
    """Run ``service`` in a thread (tests, benchmarks); on exit stop it, let it drain and
    commit, and re-raise the error it ended with, if any."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            service.run()
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)

    t = threading.Thread(target=target, daemon=True, name=f"run-{type(service).__name__}")
    t.start()
    try:
        yield service
    finally:
        service.stop()
        t.join(60)
        if errors:
            raise errors[0]
