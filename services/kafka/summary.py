"""The batch loop's periodic one-line summary, so a healthy service's log says it is working."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamsense.services.kafka.consumer import BatchLoop

log = logging.getLogger("streamsense.services.kafka.consumer")


class LoopSummary:
    """One INFO line every ``log_summary_s``: what the loop did since the last one."""

    def __init__(self, loop: BatchLoop[Any]) -> None:
        self.loop = loop
        self.at = time.monotonic()
        self.processed = 0
        self.dead = 0
        self.batches = 0
        self.items = 0

    def batch(self, size: int) -> None:
        self.batches += 1
        self.items += size

    def maybe_log(self) -> None:
        every = self.loop.settings.log_summary_s
        now = time.monotonic()
        if not every or now - self.at < every:
            return
        loop, elapsed = self.loop, now - self.at
        extra = " ".join(f"{k} {v}" for k, v in loop.handler.summary().items())
        log.info(
            "%s: %.1f msg/s, batch %.1f, lag %d, dead letters %d%s",
            loop.service,
            (loop.processed - self.processed) / elapsed,
            self.items / self.batches if self.batches else 0.0,
            sum(loop.lag.values()),
            loop.dead_lettered - self.dead,
            f", {extra}" if extra else "",
        )
        self.at, self.processed, self.dead = now, loop.processed, loop.dead_lettered
        self.batches = self.items = 0
