"""Errors of the online learner and of model rollout."""

from __future__ import annotations

from streamsense.services.exceptions import ServiceError


class LearnerError(ServiceError):
    """Base class of the learner's errors."""


class UnknownLabelError(LearnerError):
    """A label that is not one of the model's classes (the labeled message is dead-lettered)."""


class RolloutRejectedError(LearnerError):
    """A version was refused for promotion (corrupt, wrong signature, or worse than the
    champion); ``reason`` is what was announced on ``models.updates``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
