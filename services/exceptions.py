"""Errors of the services layer."""

from __future__ import annotations

from streamsense.schemas.exceptions import StreamsenseError


class ServiceError(StreamsenseError):
    """A service cannot start or continue (bad configuration, unreachable dependency)."""


class ConfigError(ServiceError):
    """Settings are inconsistent (e.g. SASL without credentials)."""
