"""Errors of the analytics app."""

from __future__ import annotations

from streamsense.services.exceptions import ServiceError


class AnalyticsError(ServiceError):
    """The analytics app cannot start or continue."""


class RulesError(AnalyticsError):
    """The alert rules file is missing, not YAML, or not valid rules."""
