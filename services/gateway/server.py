"""Run the gateway under uvicorn: in the foreground (the CLI) or in a thread (tests, benches)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from streamsense.services.exceptions import ServiceError
from streamsense.services.gateway import httpconn
from streamsense.services.gateway.app import create_app
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.gateway.wsconn import protocol
from streamsense.services.serving.clients import TRANSIENT, sync_client

log = logging.getLogger(__name__)


def uvicorn_config(settings: GatewaySettings, app: FastAPI | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        app or create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        # request heads bounded in size and time (uvicorn's own protocol bounds neither)
        http=httpconn.protocol(
            settings.gateway_max_request_head, settings.gateway_header_timeout_s
        ),
        ws=protocol(settings.gateway_ws_send_buffer),
        ws_max_size=settings.gateway_ws_max_message,  # checked on the frame header, unread
        lifespan="on",
        # X-Forwarded-For/-Proto only from configured proxies (uvicorn's default believes any
        # local client, and FORWARDED_ALLOW_IPS from the environment): they set the client
        # address and scheme the logs and the app see.
        proxy_headers=bool(settings.gateway_trusted_proxies),
        forwarded_allow_ips=list(settings.gateway_trusted_proxies),
        log_config=None,  # logging is configured by the entry point
        access_log=settings.gateway_access_log,  # token parameters redacted (redact.py)
        ws_ping_interval=settings.gateway_ws_ping_s,
        ws_ping_timeout=settings.gateway_ws_ping_s,
        ws_per_message_deflate=False,  # compressing per client costs the fan-out 50x CPU
    )


class GatewayHealth:
    """The check behind ``STREAMSENSE_METRICS_PORT``'s ``/healthz`` (what the probes call):
    Redis answers and the live subscriber is connected, like the app's own ``/healthz``."""

    def __init__(self, settings: GatewaySettings, app: FastAPI) -> None:
        self.service = settings.service_name
        self.app = app
        self.client = sync_client(settings.redis_url.get_secret_value(), timeout=1.0, retries=0)

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        hub = getattr(self.app.state, "hub", None)
        live = bool(hub is not None and hub.connected)
        try:
            redis_ok = bool(self.client.ping())
        except TRANSIENT:
            redis_ok = False
        clients = len(hub.clients) if hub is not None else 0
        detail = {"service": self.service, "redis": redis_ok, "live": live, "live_clients": clients}
        return redis_ok and live, detail

    def close(self) -> None:
        self.client.close()


class GatewayService:
    """The gateway as a service for the runner: uvicorn in the foreground, stopped (open
    connections closed gracefully) by the runner's signal handling rather than uvicorn's own.

    With ``STREAMSENSE_METRICS_PORT`` set, ``/healthz`` and ``/metrics`` are also served on
    that port, like every other service (the Kubernetes probes use it)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.check = GatewayHealth(settings, self.app)
        self.server = _Server(uvicorn_config(settings, self.app))

    def run(self) -> None:
        s = self.settings
        auth = "token required" if s.gateway_token else "no token (loopback only)"
        hosts = ", ".join(s.served_hosts)
        log.info(
            "gateway on http://%s:%d (%s; Host names served: %s)",
            s.gateway_host,
            s.gateway_port,
            auth,
            hosts,
        )
        try:
            self.server.run()
        finally:
            self.check.close()

    def stop(self) -> None:
        self.server.should_exit = True

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.check()


class _Server(uvicorn.Server):
    """Signals are the runner's (:func:`streamsense.services.runner.stop_on_signals`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServerThread:
    """A gateway in a background thread; ``port`` is known once ``start`` returns."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.server = uvicorn.Server(uvicorn_config(settings))
        self.thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)
        self.host = settings.gateway_host

    @property
    def port(self) -> int:
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                msg = "the gateway did not start"
                raise ServiceError(msg)
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
