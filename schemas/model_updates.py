"""Model versions announced on the compacted ``models.updates`` topic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamsense.schemas.base import Message
from streamsense.schemas.catalog import Task

Stage = Literal["candidate", "champion", "rejected", "archived"]


class ModelVersion(Message):
    SCHEMA = "streamsense.model_version"
    VERSION = 1

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    model_version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    task: Task
    uri: str = Field(description="location of the artifact in the model store")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    metrics: dict[str, float] = Field(default_factory=dict)
    stage: Stage
    reason: str | None = Field(default=None, description="why it was promoted or rejected")
    created_ns: int = Field(ge=0)
