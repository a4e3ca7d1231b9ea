"""Model versions announced on the compacted ``models.updates`` topic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamsense.schemas.base import Message
from streamsense.schemas.catalog import Task
from streamsense.schemas.fields import ModelName, VersionTag

Stage = Literal["candidate", "champion", "rejected", "archived"]


class ModelVersion(Message):
    SCHEMA = "streamsense.model_version"
    VERSION = 1

    name: ModelName
    model_version: VersionTag
    task: Task
    uri: str = Field(description="location of the artifact in the model store")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    metrics: dict[str, float] = Field(default_factory=dict)
    stage: Stage
    reason: str | None = Field(default=None, description="why it was promoted or rejected")
    created_ns: int = Field(ge=0)
