"""Errors of the online learner and of model rollout."""

from __future__ import annotations

from streamsense.services.exceptions import ServiceError


class LearnerError(ServiceError):
    """Base class of the learner's errors."""


class UnknownLabelError(LearnerError):
    """A label that is not one of the model's classes (the labeled message is dead-lettered)."""


class UnknownSourceError(LearnerError):
    """A label from a source id outside ``STREAMSENSE_LEARNER_SOURCES`` (dead-lettered, so it
    can be replayed once the source is allowed)."""


class BlankTextError(LearnerError):
    """A label for a text with nothing but white space: nothing to learn (dead-lettered)."""


class RolloutRejectedError(LearnerError):
    """A version was refused for promotion (corrupt, wrong signature, or worse than the
    champion); ``reason`` is what was announced on ``models.updates``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
