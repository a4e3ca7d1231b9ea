"""``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed only from the proxies in
``STREAMSENSE_GATEWAY_TRUSTED_PROXIES`` (the real gateway; the client address is what its
access log shows, the scheme what its redirects use).

Before: uvicorn's defaults (``proxy_headers=True``, ``forwarded_allow_ips=127.0.0.1``, or
``FORWARDED_ALLOW_IPS`` from the environment) were used, so any local client, or anything a
reverse proxy passed through, set the client address the gateway logged ("6.6.6.6:0 - GET ...")
and the scheme of its redirects (``Location: https://...``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from pydantic import ValidationError

from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

SPOOFED = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}


@contextmanager
def _gateway(stack: dict[str, str], proxies: str | None) -> Iterator[ServerThread]:
    extra = {} if proxies is None else {"gateway_trusted_proxies": proxies}
    settings = GatewaySettings(
        redis_url=stack["redis_url"],
        redis_prefix="ssproxy",
        gateway_port=0,
        gateway_access_log=True,
        **extra,
    )
    with ServerThread(settings) as server:
        yield server


def _seen(server: ServerThread, caplog: pytest.LogCaptureFixture) -> tuple[str, str]:
    """(client address in the access log, scheme of a redirect) for a spoofing request."""
    caplog.clear()
    path = "/api/sources/"  # redirected to /api/sources, built from the request's own URL
    r = httpx.get(server.url + path, headers=SPOOFED, timeout=10)
    assert r.status_code == 307
    lines = [
        rec for rec in caplog.records if rec.name == "uvicorn.access" and path in rec.getMessage()
    ]
    assert lines, "the request was logged"
    args = lines[-1].args
    assert isinstance(args, tuple)
    client = str(args[0]).rsplit(":", 1)[0]  # "host:port"
    return client, r.headers["location"].split("://")[0]


def test_forwarded_headers_are_ignored_by_default(
    stack: dict[str, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")  # uvicorn's own variable changes nothing
    with _gateway(stack, None) as gw:
        assert _seen(gw, caplog) == ("127.0.0.1", "http")


def test_forwarded_headers_are_believed_only_from_a_configured_proxy(
    stack: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    with _gateway(stack, "10.0.0.0/8, 192.0.2.7") as gw:  # the client is none of them
        assert _seen(gw, caplog) == ("127.0.0.1", "http")
    with _gateway(stack, "10.0.0.0/8,127.0.0.1") as gw:
        assert _seen(gw, caplog) == ("6.6.6.6", "https")


def test_a_trusted_proxy_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(ValidationError, match="not an IP address or network"):
        GatewaySettings(gateway_trusted_proxies="proxy.internal")
    settings = GatewaySettings(gateway_trusted_proxies="10.0.0.0/8, ::1 ,[fd00::]/8,192.0.2.7")
    assert settings.gateway_trusted_proxies == ("10.0.0.0/8", "::1/128", "fd00::/8", "192.0.2.7/32")
