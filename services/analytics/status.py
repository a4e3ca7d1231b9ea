"""What the analytics app's ``/healthz`` reports: counters the agents and timers write, read
by the HTTP thread, and whether the app is stuck waiting for its outputs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any

#: Outputs unacknowledged for this long make ``/healthz`` fail (an acknowledgement normally
#: takes milliseconds); the agent itself gives up at the producer's request timeout + 10 s.
STALLED_AFTER_S = 10.0

#: Fields that are bookkeeping, not counters to report.
_UNREPORTED = frozenset({"started", "waiting"})


@dataclass
class Status:
    """Counters the health endpoint reports (written by the loop, read by the HTTP thread)."""

    started: float = field(default_factory=time.monotonic)
    recovered: bool = False
    recovery_s: float | None = None
    recoveries: int = 0
    events: int = 0
    table_events: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    late: int = 0
    labels_over: int = 0
    sources_over: int = 0
    windows: int = 0
    alerts: int = 0
    ticks: int = 0
    gaps: int = 0
    forgotten: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    #: kind -> monotonic time its agent began waiting for its outputs' acknowledgements
    waiting: dict[str, float] = field(default_factory=dict)

    def report(self, service: str, crashed: bool) -> tuple[bool, dict[str, Any]]:
        """``(ok, detail)``: ok once recovered, unless crashed or stalled (``stalled`` says why)."""
        detail: dict[str, Any] = {"service": service}
        for f in fields(self):
            if f.name not in _UNREPORTED:
                value = getattr(self, f.name)
                detail[f.name] = dict(value) if isinstance(value, dict) else value
        detail["crashed"] = crashed
        stalled = self.stalled()
        if stalled:
            detail["stalled"] = stalled
        return self.recovered and not crashed and not stalled, detail

    def stalled(self) -> str:
        """Why the agents are stuck, or "" (the HTTP thread reads ``waiting`` unlocked)."""
        now = time.monotonic()
        waits = {k: now - t for k, t in dict(self.waiting).items()}
        late = {k: w for k, w in waits.items() if w >= STALLED_AFTER_S}
        return "; ".join(
            f"{kind} outputs unacknowledged for {w:.0f} s (Kafka reachable? see the log)"
            for kind, w in sorted(late.items())
        )
