"""How one batch loop consumes: topics, group, batching, delivery policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Delivery_ = Literal["exactly-once", "at-least-once"]


@dataclass(frozen=True)
class LoopConfig:
    topics: Sequence[str]
    group_id: str
    max_batch: int = 64
    max_wait_ms: int = 20
    auto_offset_reset: str = "earliest"
    max_poll_interval_ms: int = 300_000
    commit_interval_ms: int = 1_000
    stats_interval_ms: int = 5_000
    #: topics the handler writes (checked to exist, like the inputs); dead-letter topics too
    output_topics: Sequence[str] = ()
    #: None: the settings' ``delivery``; a service whose outputs are not Kafka records (the
    #: Redis sink) makes its own guarantee and runs at-least-once here
    delivery: Delivery_ | None = None
    #: exactly-once: a transaction commits at least this often (and whenever the loop idles)
    transaction_interval_ms: int = 100
    consumer_config: dict[str, Any] | None = None
