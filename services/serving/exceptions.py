"""Errors of the serving layer."""

from __future__ import annotations

from streamsense.services.exceptions import ServiceError


class ServingError(ServiceError):
    """The serving layer cannot do what was asked."""


class SourceIdError(ServingError, ValueError):
    """A source id (or key prefix) that cannot be turned into a Redis key."""
