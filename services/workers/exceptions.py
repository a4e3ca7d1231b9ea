"""Why an input cannot be served; each becomes a dead-letter record with this reason."""

from __future__ import annotations

from streamsense.services.exceptions import ServiceError


class BadFrameError(ServiceError):
    """A frame that cannot be decoded or is unsafe to decode (corrupt, oversized, a bomb)."""
