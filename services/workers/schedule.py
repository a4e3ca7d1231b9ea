"""Real time beats backlog: which frames of a fetched batch the model sees.

A worker that keeps up models every frame it fetches. A worker that is behind serves the newest
frame of each camera instead. It is behind when modelling the whole fetch would leave its oldest
frame's result later than ``worker_latency_budget_ms`` after capture (its age now plus the recent
model time per frame times the frames fetched), or when frames arrive faster than its model
serves them in full batches (over the last 2 s; it stays behind until they arrive at 80% of that
or less). The second rule keeps an overloaded worker steady: by the first alone, a worker between
1x and ~2x its capacity took turns, one batch behind and the next modelling the two batches'
worth that arrived meanwhile, which made every frame behind that double batch wait for it.

When behind, it serves the newest frame of each camera and skips the older frames it holds,
counting them per camera (``skipped_behind``); it then fetches many frames per batch (skipping
one costs a header check, not a decode) and does not prefetch the next batch while the model
runs (a prefetched batch would wait out a whole model run and pick frames a batch old), so the
queue never grows and latency stays near one batch's model time. When more cameras are waiting
than one model batch holds, cameras take turns (round-robin), so a 30 fps camera cannot starve a
1 fps one. The age limit (``worker_max_frame_age_ms``) stays a backstop; every frame is validated
before any of this, so a poison frame always reaches the dead-letter topic.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: A behind worker fetches this many model batches at a time (skipping is cheap).
CATCH_UP_FACTOR = 16
#: Weight of the newest batch in the running model time per frame.
EWMA_WEIGHT = 0.3
#: Arrivals are measured over this window (s); at least MIN_WINDOW_S of it before they count.
ARRIVAL_WINDOW_S, MIN_WINDOW_S = 2.0, 1.0
#: Overloaded above ENTER x the model's full-batch capacity; no longer below LEAVE x it.
ENTER_LOAD, LEAVE_LOAD = 1.0, 0.8


@dataclass(slots=True)
class Candidate:
    """What the scheduler needs of a frame: its camera, its order, its age."""

    camera: str
    seq: int
    age_ns: int


@dataclass
class FrameScheduler:
    model_batch: int
    budget_ms: int
    behind: bool = False
    skipped: Counter[str] = field(default_factory=Counter)
    _turn: dict[str, int] = field(default_factory=dict)  # camera -> batch it was last served
    _batches: int = 0
    ms_per_frame: float = 0.0  # running estimate of the model's time per frame
    full_ms_per_frame: float = 0.0  # the same, over full model batches only (its capacity)
    overloaded: bool = False  # frames arrive faster than the model serves them
    clock: Callable[[], float] = time.monotonic
    _arrivals: deque[tuple[float, int]] = field(default_factory=deque)  # (when, frames fetched)

    def observe(self, model_ms: float, frames: int) -> None:
        """One model batch's time, for the estimate of what the next one would take."""
        if frames:
            self.ms_per_frame = _ewma(self.ms_per_frame, model_ms / frames)
        if frames >= self.model_batch:
            self.full_ms_per_frame = _ewma(self.full_ms_per_frame, model_ms / frames)

    @property
    def load(self) -> float | None:
        """Frames arriving per second over what the model serves in full batches (None until
        both are known): above 1, no worker can model every frame and stay current."""
        window = self._arrivals
        if not self.full_ms_per_frame or len(window) < 2:
            return None
        span = window[-1][0] - window[0][0]
        if span < MIN_WINDOW_S:
            return None
        arrived = sum(n for _, n in window) - window[0][1]  # frames fetched after the first
        return arrived / span * self.full_ms_per_frame / 1000

    def _arrived(self, frames: int) -> None:
        now = self.clock()
        self._arrivals.append((now, frames))
        while self._arrivals[0][0] < now - ARRIVAL_WINDOW_S:
            self._arrivals.popleft()
        load = self.load  # None after a pause: what arrived before it says nothing now
        self.overloaded = load is not None and load > (
            LEAVE_LOAD if self.overloaded else ENTER_LOAD
        )

    def fetch_limit(self) -> int:
        return self.model_batch * (CATCH_UP_FACTOR if self.behind else 1)

    def choose(self, frames: Sequence[Candidate]) -> list[bool]:
        """Which frames to model (True) and which to skip as behind (False), in order."""
        self._batches += 1
        self._arrived(len(frames))
        budget_ns = self.budget_ms * 1_000_000
        newest: dict[str, int] = {}
        count: Counter[str] = Counter()
        for i, f in enumerate(frames):
            count[f.camera] += 1
            j = newest.get(f.camera)
            if j is None or f.seq >= frames[j].seq:
                newest[f.camera] = i
        oldest_ns = max((f.age_ns for f in frames), default=0)
        done_ns = oldest_ns + self.ms_per_frame * len(frames) * 1_000_000
        late = done_ns > budget_ns or self.overloaded
        self.behind = bool(self.budget_ms) and bool(frames) and late
        if not self.behind:
            return [True] * len(frames)
        # the least recently served first; among equals the camera with fewer frames waiting
        # (a slow camera's rare frame before a fast camera's next one)
        order = sorted(newest, key=lambda c: (self._turn.get(c, 0), count[c], c))
        cameras = order[: self.model_batch]
        keep = {newest[c] for c in cameras}
        for c in cameras:
            self._turn[c] = self._batches
        out = [i in keep for i in range(len(frames))]
        for f, kept in zip(frames, out, strict=True):
            if not kept:
                self.skipped[f.camera] += 1
        return out


def _ewma(old: float, new: float) -> float:
    return new if not old else old + EWMA_WEIGHT * (new - old)
