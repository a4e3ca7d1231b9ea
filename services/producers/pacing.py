"""Frame pacing: keep a source's own rate (or a target rate) without bursting to catch up
(a live source catches up the slots a short stall missed, at most one frame per slot)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: A live source behind by less than this catches up its missed slots with the frames it
#: delivers late; further behind, the grid starts afresh at the next frame.
CATCH_UP_S = 1.0


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
        """One frame per slot of the target rate's grid. A source that stalls (a busy host, a
        network hiccup) delivers the frames it held in a burst: they fill the slots missed in
        the last :data:`CATCH_UP_S` (restarting the grid instead lost every missed slot: 4%
        of a 10 fps stream thinned to 5 fps when 3% of its reads stalled up to 0.4 s)."""
        if not self.period:
            return True
        now = self._clock()
        if self._next is None or now - self._next >= max(self.period, CATCH_UP_S):
            self._next = now + self.period  # first frame, or far behind: restart the grid
            return True
        if now < self._next:
            return False
        self._next += self.period
        return True
