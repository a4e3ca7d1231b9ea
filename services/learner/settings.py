"""Settings of the online learner (``STREAMSENSE_LEARNER_*`` and the shared ``STREAMSENSE_*``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from streamsense.schemas.catalog import TASKS, Task, Topic
from streamsense.schemas.fields import SourceId
from streamsense.services.learner.admission import AdmissionConfig
from streamsense.services.learner.online import CheckConfig, TrainingConfig
from streamsense.services.learner.policy import PromotionPolicy
from streamsense.services.settings import StreamsenseSettings


class LearnerSettings(StreamsenseSettings):
    learner_task: Task = "sentiment"
    """the task of the model it improves"""
    learner_model: str | None = Field(default=None, description="default: the task's zoo model")
    learner_group: str | None = Field(
        default=None, description="consumer group (default <topic prefix>streamsense-learner)"
    )
    learner_max_batch: int = Field(default=64, ge=1, le=1024, description="labels per batch")
    learner_max_wait_ms: int = Field(default=100, ge=0, le=10_000)
    """how long to wait to fill a batch of labels (ms)"""

    learner_learning_rate: float = Field(default=1e-3, gt=0, le=0.1)
    """the challenger's Adam learning rate"""
    learner_step_size: int = Field(default=32, ge=2, le=1024, description="examples per step")
    learner_replay_fraction: float = Field(default=0.5, ge=0, lt=1)
    """share of each training step taken from the replay buffer"""
    learner_replay_capacity: int = Field(default=4000, ge=0)
    """labeled examples kept for replay"""
    learner_max_steps: int = Field(default=8, ge=1, le=256, description="steps per batch")
    learner_train_budget_s: float = Field(default=2.0, gt=0, le=60)
    """most training time per batch of labels (s)"""

    learner_window: int = Field(default=500, ge=10, description="paired labels compared")
    learner_check_every: int = Field(default=250, ge=1, description="labels between checks")
    learner_drift_delta: float = Field(default=0.002, gt=0, lt=1)
    """ADWIN's confidence: smaller detects drift later but surer"""
    learner_margin: float = Field(default=0.02, ge=0, le=1, description="accuracy gain needed")
    learner_min_samples: int = Field(default=200, ge=1)
    """paired labels needed before a promotion"""
    learner_min_interval_s: float = Field(default=30.0, ge=0, description="between promotions")

    learner_source_max_share: float = Field(default=1.0, gt=0, le=1)
    """most of the labels learned in an interval, and of the replay buffer, that one source
    (a label's source_id) may hold, never less than an equal split of the sources active in
    it; labels over it are skipped and counted. 1 (the default): no bound. Set it (e.g. 0.25)
    where label producers are not all trusted; it also holds a busy honest source to the
    share while others send"""
    learner_source_window_s: float = Field(default=60.0, gt=0, le=86_400)
    """the interval over which each source's share of the labels learned is counted (s)"""
    learner_dedup_window: int = Field(default=10_000, ge=0, le=1_000_000)
    """distinct (source, text, label) labels remembered: one a source sends again while
    remembered is skipped as a replay (0: off)"""
    learner_sources: Annotated[tuple[SourceId, ...], NoDecode] = Field(
        default=(),
        description="the source ids labels are taken from (comma-separated); a label from "
        "any other is dead-lettered (UnknownSourceError); empty = any source",
    )

    @field_validator("learner_sources", mode="before")
    @classmethod
    def _sources(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        return value

    @property
    def model_name(self) -> str:
        return self.learner_model or TASKS[self.learner_task].default_model

    @property
    def group_id(self) -> str:
        return self.learner_group or self.group("learner")

    @property
    def labels_topic(self) -> str:
        return self.topic(Topic.LABELS_TEXT)

    @property
    def updates_topic(self) -> str:
        return self.topic(Topic.MODEL_UPDATES)

    def training(self) -> TrainingConfig:
        return TrainingConfig(
            step_size=self.learner_step_size,
            replay_fraction=self.learner_replay_fraction,
            max_steps=self.learner_max_steps,
            budget_s=self.learner_train_budget_s,
            replay_capacity=self.learner_replay_capacity,
            source_max_share=self.learner_source_max_share,
        )

    def admission(self) -> AdmissionConfig:
        return AdmissionConfig(
            max_share=self.learner_source_max_share,
            window_s=self.learner_source_window_s,
            dedup_window=self.learner_dedup_window,
        )

    def checks(self) -> CheckConfig:
        return CheckConfig(
            window=self.learner_window,
            check_every=self.learner_check_every,
            drift_delta=self.learner_drift_delta,
        )

    def policy(self) -> PromotionPolicy:
        return PromotionPolicy(
            margin=self.learner_margin,
            min_samples=self.learner_min_samples,
            min_interval_s=self.learner_min_interval_s,
        )
