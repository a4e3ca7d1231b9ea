"""Event-time windows per source, kept as one plain JSON value per source (one table row).

A source's row holds its open windows, its running totals, the last applied offset of every
input topic and the firing state of its alert rules. Keeping all of that in one value is what
makes a replay after a crash idempotent: the changelog record that carries the new counts
also carries the offset they include, so an event at or below that offset is a duplicate.

Why not Faust's windowed tables (``Table.tumbling``/``hopping``): they close windows on the
wall clock (``Collection._del_old_keys`` compares against ``time.time()``), drop closed
windows from the store without a changelog tombstone, and have no place for the source offset.
Windows here are integers in nanoseconds and close on the source's own event time.

Everything in this module is pure: no Faust, no Kafka, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

Acc = dict[str, dict[str, float]]  # {"s": sums, "m": maxima}

#: Nanoseconds per second: every time in analytics is an integer of nanoseconds.
NS = 1_000_000_000


@dataclass(frozen=True)
class WindowSpec:
    """Windows ``[start, start + size)`` starting every ``step`` (tumbling: step == size)."""

    name: str
    size_ns: int
    step_ns: int

    def __post_init__(self) -> None:
        if self.size_ns <= 0 or not 0 < self.step_ns <= self.size_ns:
            msg = f"window {self.name}: need 0 < step <= size, got {self.step_ns}/{self.size_ns}"
            raise ValueError(msg)

    def starts(self, ts_ns: int) -> list[int]:
        """Start of every window that contains ``ts_ns``, oldest first."""
        start = ts_ns - ts_ns % self.step_ns
        out: list[int] = []
        while start > ts_ns - self.size_ns:
            out.append(start)
            start -= self.step_ns
        out.reverse()
        return out


@dataclass(frozen=True)
class Observation:
    """What one result contributes to a window: fields summed and fields maximised, plus the
    per-event metrics that event rules look at (e.g. ``people`` in this frame)."""

    sums: dict[str, float]
    maxes: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ClosedWindow:
    window: str
    start_ns: int
    end_ns: int
    acc: Acc


def new_acc() -> Acc:
    return {"s": {}, "m": {}}


def add(acc: Acc, obs: Observation) -> None:
    sums, maxes = acc["s"], acc["m"]
    for k, v in obs.sums.items():
        sums[k] = sums.get(k, 0.0) + v
    for k, v in obs.maxes.items():
        old = maxes.get(k)
        maxes[k] = v if old is None or v > old else old


class SourceState:
    """Typed access to one source's row; ``d`` is the JSON value stored in the table."""

    __slots__ = ("d",)

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d

    @classmethod
    def new(cls, partition: int) -> SourceState:
        return cls(
            {
                "p": partition,  # the input partition (= changelog partition) of this source
                "off": {},  # topic -> last applied offset
                "t": None,  # stream time: the newest event time seen (ns)
                "seen": 0.0,  # wall clock of the last arrival (s), for silence rules
                "n": 0,  # events applied
                "late": 0,  # events that missed at least one already closed window
                "win": {},  # window name -> {str(start_ns): acc}
                "closed": {},  # window name -> end of the newest closed window (ns)
                "tot": new_acc(),
                "fire": [],  # names of the rules currently in breach
            }
        )

    # -- reading ---------------------------------------------------------------------------

    @property
    def partition(self) -> int:
        return int(self.d["p"])

    @property
    def events(self) -> int:
        return int(self.d["n"])

    @property
    def seen_s(self) -> float:
        return float(self.d["seen"])

    @property
    def stream_ns(self) -> int | None:
        t = self.d["t"]
        return None if t is None else int(t)

    @property
    def totals(self) -> Acc:
        acc: Acc = self.d["tot"]
        return acc

    @property
    def firing(self) -> list[str]:
        names: list[str] = self.d["fire"]
        return names

    def has_open_windows(self) -> bool:
        return any(self.d["win"].values())

    def is_duplicate(self, topic: str, offset: int) -> bool:
        """True when ``topic@offset`` is already included (a redelivery after a restart)."""
        last = self.d["off"].get(topic)
        return last is not None and offset <= last

    # -- updating ------------------------------------------------------------------------

    def apply(
        self,
        topic: str,
        offset: int,
        ts_ns: int,
        obs: Observation,
        specs: Iterable[WindowSpec],
        grace_ns: int,
        wall_s: float,
    ) -> tuple[list[ClosedWindow], bool]:
        """Add one event; return the windows its event time closed and whether it was late
        (its time falls in a window that had already closed: the totals still count it)."""
        d = self.d
        d["off"][topic] = offset
        d["seen"] = wall_s
        d["n"] += 1
        add(d["tot"], obs)
        late = False
        for spec in specs:
            wins = d["win"].setdefault(spec.name, {})
            closed_end = d["closed"].get(spec.name)
            for start in spec.starts(ts_ns):
                if closed_end is not None and start + spec.size_ns <= closed_end:
                    late = True
                    continue
                key = str(start)
                acc = wins.get(key)
                if acc is None:
                    acc = wins[key] = new_acc()
                add(acc, obs)
        if late:
            d["late"] += 1
        if d["t"] is None or ts_ns > d["t"]:
            d["t"] = ts_ns
        return self.close_until(d["t"] - grace_ns, specs), late

    def close_until(self, watermark_ns: int, specs: Iterable[WindowSpec]) -> list[ClosedWindow]:
        """Close every window that ends at or before ``watermark_ns``."""
        return list(self._close(specs, lambda end: end <= watermark_ns))

    def close_all(self, specs: Iterable[WindowSpec]) -> list[ClosedWindow]:
        """Close every open window (the source went quiet)."""
        return list(self._close(specs, lambda _end: True))

    def _close(
        self, specs: Iterable[WindowSpec], due: Callable[[int], bool]
    ) -> Iterator[ClosedWindow]:
        d = self.d
        for spec in specs:
            wins: dict[str, Acc] = d["win"].get(spec.name, {})
            for key in sorted(wins, key=int):
                start = int(key)
                end = start + spec.size_ns
                if not due(end):
                    continue
                acc = wins.pop(key)
                old = d["closed"].get(spec.name)
                d["closed"][spec.name] = end if old is None else max(old, end)
                yield ClosedWindow(spec.name, start, end, acc)
