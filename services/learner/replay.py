"""A bounded replay buffer of earlier labels, mixed into every training step against
forgetting, in which no source holds more than its share.

With one source it is plain reservoir sampling (every label seen so far is kept with equal
probability). With several, each source may hold at most ``max_share`` of the buffer, never
less than an equal split of the sources in it (:func:`~streamsense.services.learner.admission
.fair_cap`): a source at its cap only replaces its own examples (a reservoir of its own
history), and a source under its cap takes a free slot, else a slot of the source furthest
over its cap, else (nobody over) a reservoir draw over all slots. So a flood from one source
cannot push another source's examples out of the buffer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Generic, TypeVar

from streamsense.services.learner.admission import fair_cap

T = TypeVar("T")


class ReplayBuffer(Generic[T]):
    def __init__(self, capacity: int, seed: int = 0, max_share: float = 1.0) -> None:
        if capacity < 0:
            msg = "capacity must be >= 0"
            raise ValueError(msg)
        if not 0 < max_share <= 1:
            msg = "max_share must be in (0, 1]"
            raise ValueError(msg)
        self.capacity = capacity
        self.max_share = max_share
        self.seen = 0
        self._items: list[tuple[T, int, str]] = []
        self._owned: dict[str, list[int]] = {}  # source -> its slots
        self._where: list[int] = []  # slot -> index in its source's list
        self._seen_by: dict[str, int] = {}  # source -> labels offered while it holds slots
        self._rng = random.Random(seed)  # noqa: S311 - sampling, not security

    def __len__(self) -> int:
        return len(self._items)

    def held(self) -> dict[str, int]:
        """Examples held per source."""
        return {s: len(slots) for s, slots in self._owned.items()}

    def add(
        self, inputs: Sequence[T], labels: Sequence[int], sources: Sequence[str] | None = None
    ) -> None:
        """``sources``: the source of each example (None: all from one source)."""
        srcs = [""] * len(inputs) if sources is None else sources
        for x, y, s in zip(inputs, labels, srcs, strict=True):
            self.seen += 1
            if self.capacity:
                self._add((x, int(y), s))

    def _add(self, item: tuple[T, int, str]) -> None:
        source = item[2]
        seen = self._seen_by[source] = self._seen_by.get(source, 0) + 1
        own = self._owned.get(source, [])
        if len(self._items) < self.capacity:
            self._put(len(self._items), item)
            return
        active = len(self._owned) + (0 if own else 1)
        cap = fair_cap(self.max_share, active, self.capacity)
        if len(own) >= cap:  # at its share: a reservoir of its own history
            j = self._rng.randrange(seen)
            if j < len(own):
                self._put(own[j], item)
            return
        over = [
            (len(slots), s)
            for s, slots in self._owned.items()
            if s != source and len(slots) > fair_cap(self.max_share, active, self.capacity)
        ]
        if over:  # under its share: evict from the source furthest over its own
            victim = self._owned[max(over)[1]]
            self._put(victim[self._rng.randrange(len(victim))], item)
            return
        j = self._rng.randrange(self.seen)
        if j < self.capacity:
            self._put(j, item)

    def _put(self, slot: int, item: tuple[T, int, str]) -> None:
        if slot == len(self._items):
            self._items.append(item)
            self._where.append(0)
        else:
            before = self._items[slot][2]
            self._release(slot)
            self._items[slot] = item
            if before != item[2] and before not in self._owned:
                del self._seen_by[before]  # it holds nothing now: a later return starts anew
        own = self._owned.setdefault(item[2], [])
        self._where[slot] = len(own)
        own.append(slot)

    def _release(self, slot: int) -> None:
        """Take ``slot`` from its source's list (swap-remove)."""
        source = self._items[slot][2]
        own = self._owned[source]
        i, last = self._where[slot], own[-1]
        own[i] = last
        self._where[last] = i
        own.pop()
        if not own:
            del self._owned[source]

    def sample(self, k: int) -> tuple[list[T], list[int]]:
        """Up to ``k`` stored examples, without replacement."""
        picked = self._rng.sample(self._items, min(k, len(self._items)))
        return [x for x, _, _ in picked], [y for _, y, _ in picked]
