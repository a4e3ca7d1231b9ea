"""Faust analytics outputs: windowed statistics and alerts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamsense.schemas.base import Message


class WindowStat(Message):
    """One closed (or updated) window of a per-source statistic on ``analytics.*``."""

    SCHEMA = "streamsense.analytics.window"
    VERSION = 1

    source_id: str
    kind: Literal["camera", "text"]
    window: Literal["tumbling", "hopping"]
    window_start_ns: int
    window_end_ns: int
    values: dict[str, float] = Field(description="e.g. count.person, frames, mean_sentiment")


class Alert(Message):
    SCHEMA = "streamsense.alert"
    VERSION = 1

    rule: str
    source_id: str
    severity: Literal["info", "warning", "critical"] = "warning"
    message: str
    value: float
    threshold: float
    ts_ns: int
