"""A tiny HTTP server for ``/healthz`` and ``/metrics``, run in a daemon thread.

Liveness/readiness is whatever the service's check callable says; probes in docker compose and
Kubernetes call ``/healthz`` and expect 200.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


class HealthServer:
    """Serves ``GET /healthz`` (200 or 503 with a JSON body) and ``GET /metrics``."""

    def __init__(self, check: HealthCheck, host: str = "127.0.0.1", port: int = 0) -> None:
        self._check = check
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.startswith("/metrics"):
                    self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif self.path.startswith("/healthz"):
                    try:
                        ok, detail = server._check()
                    except Exception as exc:  # a failing check means unhealthy, not a crash
                        ok, detail = False, {"error": repr(exc)}
                    body = orjson.dumps({"ok": ok, **detail}, default=str)
                    self._send(200 if ok else 503, body, "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                log.debug("health http: " + format, *args)

        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="health-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("health and metrics on http://%s:%d/healthz", *self._httpd.server_address[:2])
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
