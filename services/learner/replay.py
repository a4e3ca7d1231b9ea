"""A bounded replay buffer of earlier labels, mixed into every training step against
forgetting (reservoir sampling: every label seen so far is kept with equal probability)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class ReplayBuffer(Generic[T]):
    def __init__(self, capacity: int, seed: int = 0) -> None:
        if capacity < 0:
            msg = "capacity must be >= 0"
            raise ValueError(msg)
        self.capacity = capacity
        self.seen = 0
        self._items: list[tuple[T, int]] = []
        self._rng = random.Random(seed)  # noqa: S311 - sampling, not security

    def __len__(self) -> int:
        return len(self._items)

    def add(self, inputs: Sequence[T], labels: Sequence[int]) -> None:
        for item in zip(inputs, labels, strict=True):
            self.seen += 1
            if len(self._items) < self.capacity:
                self._items.append((item[0], int(item[1])))
            elif self.capacity:
                j = self._rng.randrange(self.seen)
                if j < self.capacity:
                    self._items[j] = (item[0], int(item[1]))

    def sample(self, k: int) -> tuple[list[T], list[int]]:
        """Up to ``k`` stored examples, without replacement."""
        picked = self._rng.sample(self._items, min(k, len(self._items)))
        return [x for x, _ in picked], [y for _, y in picked]
