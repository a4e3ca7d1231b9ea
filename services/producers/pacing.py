"""Frame pacing: keep a source's own rate (or a target rate) without bursting to catch up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    """``wait`` blocks until the next frame slot (finite sources: files, folders); ``take`` says
    whether a frame read now should be sent (live sources, which set their own pace)."""

    def __init__(self, fps: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self._clock = clock
        self._next: float | None = None

    @property
    def active(self) -> bool:
        return self.period > 0

    def wait(self, stop: threading.Event) -> None:
        if not self.period:
            return
        now = self._clock()
        if self._next is None:
            self._next = now
        delay = self._next - now
        if delay > 0:
            stop.wait(delay)
        elif delay < -self.period:
            self._next = now  # more than a frame behind: start afresh rather than burst
        self._next += self.period

    def take(self) -> bool:
        if not self.period:
            return True
        now = self._clock()
        if self._next is None or now - self._next >= self.period:
            self._next = now + self.period  # first frame, or far behind: restart the grid
            return True
        if now < self._next:
            return False
        self._next += self.period
        return True
