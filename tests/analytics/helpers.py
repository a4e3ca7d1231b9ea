"""Shared helpers of the analytics tests: raw input records from synthetic results."""

from __future__ import annotations

from typing import Any

from streamsense.schemas.registry import decode, encode
from streamsense.services.analytics.processor import InRecord
from streamsense.services.analytics.windows import NS

S = NS
B = 1_700_000_000 * S  # a multiple of 10 s and of 60 s: windows start at B
DET, SEG, SEN = "r.detections", "r.segments", "r.sentiment"


def records(topic: str, messages: list[Any], start: int = 0, partition: int = 0) -> list[InRecord]:
    """``messages`` as consecutive records of ``topic[partition]`` from offset ``start``."""
    return [
        InRecord(topic, partition, start + i, m.source_id.encode(), encode(m))
        for i, m in enumerate(messages)
    ]


def event_time(rec: InRecord) -> int:
    t: int = decode(rec.value).timings.capture_ns  # type: ignore[attr-defined]
    return t
