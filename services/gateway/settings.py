"""Settings of the gateway (``STREAMSENSE_GATEWAY_*`` plus the shared ``STREAMSENSE_*`` ones)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from streamsense.schemas.fields import SourceId
from streamsense.services.exceptions import ConfigError
from streamsense.services.settings import StreamsenseSettings

MIN_TOKEN_CHARS = 12
#: Host names a browser uses for this machine; the default Host allowlist.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
#: What an Authorization header carries as it is: printable ASCII.
_TOKEN_CHARS = re.compile(r"^[\x20-\x7e]+$")
_HOST = re.compile(r"^(\*|(\*\.)?[a-z0-9.\-]+|\[[0-9a-f:.]+\])$")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split(value: Any) -> Any:
    """Comma-separated in the environment (``a,b``); a list or tuple from Python."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


def _host_form(host: str) -> str:
    """How a Host header names ``host``: IPv6 literals in brackets, lower case."""
    host = host.strip().lower()
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            return f"[{host.strip('[]')}]"
    except ValueError:
        pass
    return host


class GatewaySettings(StreamsenseSettings):
    """Bound to loopback the gateway needs no token; bound anywhere else it refuses to start
    without ``STREAMSENSE_GATEWAY_TOKEN``. When a token is set, every API route, ``/ws/live``,
    ``/docs``, ``/openapi.json`` and ``/metrics`` need it as ``Authorization: Bearer <token>``
    (the dashboard's WebSocket uses a single-use ticket fetched with that header)."""

    service_name: str = "gateway"
    """name in logs and metrics, and the Kafka client id"""
    gateway_host: str = "127.0.0.1"
    """the interface the gateway listens on (anything but loopback needs a token)"""
    gateway_port: int = Field(default=8000, ge=0, le=65535, description="its TCP port")
    gateway_token: SecretStr | None = Field(
        default=None,
        description="bearer token for every route but /healthz (unset: allowed on loopback only)",
    )
    gateway_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=LOOPBACK_HOSTS,
        description="Host header names served (comma-separated; '*.example.com' matches "
        "subdomains, '*' any); the bind address is added when it is a specific one",
    )
    gateway_allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="other origins (scheme://host[:port]) allowed to open /ws/live, post and "
        "call the API from a browser (CORS); empty = same origin only",
    )
    gateway_access_log: bool = Field(default=False, description="uvicorn's access log")
    gateway_trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="addresses or networks (comma-separated, e.g. '10.0.0.0/8,::1') of reverse "
        "proxies whose X-Forwarded-For / X-Forwarded-Proto are believed for the client address "
        "and scheme; empty = those headers are ignored (any client could set them)",
    )
    gateway_client_queue: int = Field(
        default=256, ge=1, description="messages buffered per WebSocket client before dropping"
    )
    gateway_slow_client_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="a WebSocket client whose socket has taken nothing for this long while "
        "messages wait for it is closed with code 1013",
    )
    gateway_max_live_clients: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="/ws/live clients at most; a handshake past that is answered 503 with "
        "Retry-After (each client holds a socket and ~35 kB)",
    )
    gateway_ws_max_message: int = Field(
        default=4096,
        ge=125,
        le=1 << 20,
        description="largest message a WebSocket client may send (bytes); larger ones close "
        "the socket (1009) before they are buffered",
    )
    gateway_ws_send_buffer: int = Field(
        default=65536,
        ge=4096,
        le=16 << 20,
        description="per WebSocket client: what may be sent before the client confirms reading "
        "(a pong), the kernel send buffer and the transport's high-water mark (bytes); what a "
        "client that stops reading takes before it counts as stalled",
    )
    gateway_ticket_ttl_s: float = Field(
        default=30.0, gt=0, le=600, description="life of a /ws/live ticket (single use)"
    )
    gateway_stale_after_s: float = Field(
        default=10.0, gt=0, description="the dashboard marks a tile stale after this age"
    )
    gateway_feedback_source: SourceId = Field(
        default="gateway",
        description="the source id of every label sent through POST /api/feedback: the gateway "
        "cannot tell its callers apart, so a caller may not name another source (403)",
    )
    gateway_feedback_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="how long POST /api/feedback waits for Kafka"
    )
    gateway_stats_window_s: float = Field(
        default=10.0, gt=0, le=3600, description="the window /api/stats measures rates over (s)"
    )
    gateway_max_listed: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="most ids one answer lists (sources, cameras); totals say how many exist",
    )
    gateway_max_request_head: int = Field(
        default=32768,
        ge=4096,
        le=1 << 20,
        description="largest HTTP request line plus headers (bytes): larger ones get 414 or 431 "
        "and the connection is closed before more is read",
    )
    gateway_header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="a request head must be complete this long after the connection opened or "
        "the previous answer went out, and a POST body this long after its head; else 408 and "
        "the connection is closed",
    )
    gateway_ws_ping_s: float = Field(
        default=20.0,
        gt=0,
        description="WebSocket keepalive: ping every N s; a client silent for N s more is closed",
    )

    @field_validator("gateway_allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> Any:
        value = _split(value)
        hosts = tuple(_host_form(h) for h in value)
        for h in hosts:
            if not _HOST.match(h):
                msg = (
                    f"STREAMSENSE_GATEWAY_ALLOWED_HOSTS: {h!r} is not a host name, "
                    "'*.domain' or '*'"
                )
                raise ValueError(msg)
        return hosts

    @field_validator("gateway_allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        origins = tuple(o.rstrip("/").lower() for o in _split(value))
        for o in origins:
            if not _ORIGIN.match(o):
                msg = (
                    f"STREAMSENSE_GATEWAY_ALLOWED_ORIGINS: {o!r} is not an origin "
                    "(scheme://host[:port], no path)"
                )
                raise ValueError(msg)
        return origins

    @field_validator("gateway_trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        proxies = tuple(p.replace("[", "").replace("]", "") for p in _split(value))
        for p in proxies:
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                msg = (
                    f"STREAMSENSE_GATEWAY_TRUSTED_PROXIES: {p!r} is not an IP address or "
                    "network (a.b.c.d, a.b.c.d/nn, an IPv6 address or network)"
                )
                raise ValueError(msg) from None
        return tuple(str(ipaddress.ip_network(p, strict=False)) for p in proxies)

    @model_validator(mode="after")
    def _check_token(self) -> GatewaySettings:
        token = self.gateway_token.get_secret_value() if self.gateway_token else None
        if token is not None and len(token) < MIN_TOKEN_CHARS:
            msg = f"STREAMSENSE_GATEWAY_TOKEN must have at least {MIN_TOKEN_CHARS} characters"
            raise ConfigError(msg)
        if token is not None and (token != token.strip() or not _TOKEN_CHARS.match(token)):
            # A header carries neither: such a token could never be sent, every client would
            # get 401 (a trailing newline from a secret file is the usual cause).
            msg = (
                "STREAMSENSE_GATEWAY_TOKEN must be printable ASCII without leading or trailing "
                "whitespace (an Authorization header cannot carry it); a trailing newline from "
                "a secret file is the usual cause"
            )
            raise ConfigError(msg)
        if token is None and not is_loopback(self.gateway_host):
            msg = (
                f"the gateway binds to {self.gateway_host}, which is not loopback: set "
                "STREAMSENSE_GATEWAY_TOKEN (clients send it as a bearer token)"
            )
            raise ConfigError(msg)
        return self

    @property
    def served_hosts(self) -> tuple[str, ...]:
        """The Host allowlist: the configured names plus a specific bind address."""
        bound = _host_form(self.gateway_host)
        wildcard = bound in ("0.0.0.0", "[::]", "")  # noqa: S104 - compared, not bound
        extra = () if wildcard or bound in self.gateway_allowed_hosts else (bound,)
        return (*self.gateway_allowed_hosts, *extra)
