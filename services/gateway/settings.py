"""Settings of the gateway (``STREAMSENSE_GATEWAY_*`` plus the shared ``STREAMSENSE_*`` ones)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr, model_validator

from streamsense.services.exceptions import ConfigError
from streamsense.services.settings import StreamsenseSettings

MIN_TOKEN_CHARS = 12


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class GatewaySettings(StreamsenseSettings):
    """Bound to loopback the gateway needs no token; bound anywhere else it refuses to start
    without ``STREAMSENSE_GATEWAY_TOKEN``. When a token is set, every REST and WebSocket call
    needs it (``Authorization: Bearer <token>`` or ``?token=<token>``)."""

    service_name: str = "gateway"
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8000, ge=0, le=65535)
    gateway_token: SecretStr | None = None
    gateway_client_queue: int = Field(
        default=256, ge=1, description="messages buffered per WebSocket client before dropping"
    )
    gateway_stats_window_s: float = Field(default=10.0, gt=0, le=3600)
    gateway_ws_ping_s: float = Field(
        default=20.0,
        gt=0,
        description="WebSocket keepalive: ping every N s; a client silent for N s more is closed",
    )

    @model_validator(mode="after")
    def _check_token(self) -> GatewaySettings:
        token = self.gateway_token.get_secret_value() if self.gateway_token else None
        if token is not None and len(token) < MIN_TOKEN_CHARS:
            msg = f"STREAMSENSE_GATEWAY_TOKEN must have at least {MIN_TOKEN_CHARS} characters"
            raise ConfigError(msg)
        if token is None and not is_loopback(self.gateway_host):
            msg = (
                f"the gateway binds to {self.gateway_host}, which is not loopback: set "
                "STREAMSENSE_GATEWAY_TOKEN (clients send it as a bearer token or ?token=)"
            )
            raise ConfigError(msg)
        return self
