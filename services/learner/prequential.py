"""Prequential (predict, then learn) bookkeeping: paired sliding windows and drift detection.

Every labeled example is predicted by the champion and by the challenger *before* either
learns from it, so both are scored on the same labels and no example is seen before it is
scored. ``river.drift.ADWIN`` watches the champion's error stream (1 = wrong).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from river import drift


@dataclass(frozen=True)
class WindowStats:
    n: int
    champion: float
    challenger: float

    @property
    def gain(self) -> float:
        return self.challenger - self.champion


class PairedWindow:
    """Correctness of champion and challenger on the last ``size`` labels (same labels)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._champion: deque[bool] = deque(maxlen=size)
        self._challenger: deque[bool] = deque(maxlen=size)
        self.total = 0  # labels recorded since the last reset

    def __len__(self) -> int:
        return len(self._champion)

    def record(self, champion_ok: bool, challenger_ok: bool) -> None:
        self._champion.append(champion_ok)
        self._challenger.append(challenger_ok)
        self.total += 1

    def stats(self, last: int | None = None) -> WindowStats:
        """Accuracies over the last ``last`` labels (default: the whole window)."""
        n = len(self._champion) if last is None else min(last, len(self._champion))
        if n == 0:
            return WindowStats(0, 0.0, 0.0)
        start = len(self._champion) - n
        champ = sum(self._champion[i] for i in range(start, len(self._champion)))
        chall = sum(self._challenger[i] for i in range(start, len(self._challenger)))
        return WindowStats(n, champ / n, chall / n)

    def reset(self) -> None:
        self._champion.clear()
        self._challenger.clear()
        self.total = 0


class DriftMonitor:
    """ADWIN over the champion's error stream; remembers where the last change was."""

    def __init__(self, delta: float = 0.002, clock: int = 32) -> None:
        self.delta = delta
        self.clock = clock
        self.detections = 0
        self.seen = 0
        self.last_drift_at: int | None = None  # self.seen when the last change was detected
        self._adwin = drift.ADWIN(delta=delta, clock=clock)

    def update(self, error: bool) -> bool:
        """Feed one outcome; True when ADWIN detected a change in the error rate."""
        self.seen += 1
        self._adwin.update(1.0 if error else 0.0)
        if self._adwin.drift_detected:
            self.detections += 1
            self.last_drift_at = self.seen
            return True
        return False

    @property
    def error_rate(self) -> float:
        return float(self._adwin.estimation)

    @property
    def since_drift(self) -> int | None:
        """Labels seen since the last detected change (None: no change yet)."""
        return None if self.last_drift_at is None else self.seen - self.last_drift_at

    def reset(self) -> None:
        self._adwin = drift.ADWIN(delta=self.delta, clock=self.clock)
        self.last_drift_at = None
