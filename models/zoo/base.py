"""What every zoo model module provides: a name, a version and a ``build`` function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streamsense.models.card import ModelCard
from streamsense.schemas.model_updates import Task

#: Our own code's licence, for models we train or convert.
PROJECT_LICENCE = "Apache-2.0"


def _no_progress(description: str, advance: float = 1.0) -> None:
    """Default progress callback: report nothing."""


@dataclass(frozen=True)
class BuildContext:
    """Where a build reads downloads from and writes its artifact to."""

    downloads: Path
    workdir: Path
    #: ``step(description, advance)``: report progress (units are the entry's ``steps``).
    step: Callable[[str, float], None] = field(default=_no_progress)


@dataclass(frozen=True)
class Built:
    artifact: Path
    card: ModelCard


@dataclass(frozen=True)
class ZooModel:
    name: str
    version: str
    task: Task
    description: str
    steps: int
    build: Callable[[BuildContext], Built]
