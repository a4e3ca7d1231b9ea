"""Real time beats backlog: which frames of a fetched batch the model sees.

A worker that keeps up models every frame it fetches. A worker that is behind (modelling the whole
fetch would leave its oldest frame's result later than ``worker_latency_budget_ms`` after capture:
its age now plus the recent model time per frame times the frames fetched) serves the newest frame
of each camera and skips the older frames it holds, counting them per camera (``skipped_behind``);
it then fetches many frames per batch (skipping one costs a header check, not a decode) and does
not prefetch the next batch while the model runs (a prefetched batch would wait out a whole model
run and pick frames a batch old), so the queue never grows and latency stays near one batch's
model time. When more cameras are waiting than one model
batch holds, cameras take turns (round-robin), so a 30 fps camera cannot starve a 1 fps one. The age
limit (``worker_max_frame_age_ms``) stays a backstop; every frame is validated before any of this,
so a poison frame always reaches the dead-letter topic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

#: A behind worker fetches this many model batches at a time (skipping is cheap).
CATCH_UP_FACTOR = 16
#: Weight of the newest batch in the running model time per frame.
EWMA_WEIGHT = 0.3


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

    def observe(self, model_ms: float, frames: int) -> None:
        """One model batch's time, for the estimate of what the next one would take."""
        if frames:
            per = model_ms / frames
            old = self.ms_per_frame
            self.ms_per_frame = per if not old else old + EWMA_WEIGHT * (per - old)

    def fetch_limit(self) -> int:
        return self.model_batch * (CATCH_UP_FACTOR if self.behind else 1)

    def choose(self, frames: Sequence[Candidate]) -> list[bool]:
        """Which frames to model (True) and which to skip as behind (False), in order."""
        self._batches += 1
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
        self.behind = bool(self.budget_ms) and bool(frames) and done_ns > budget_ns
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
