"""Errors of the Redis sink."""

from __future__ import annotations

from streamsense.services.exceptions import ServiceError


class SinkError(ServiceError):
    """The sink cannot go on (e.g. asked to stop while Redis is unreachable)."""


class ThumbnailError(SinkError):
    """A frame could not be turned into a thumbnail (undecodable image or headers)."""
