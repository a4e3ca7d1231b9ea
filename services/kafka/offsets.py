"""Which positions may be committed: only those whose every record Kafka acknowledged.

One algorithm, :class:`AckedPrefix`, used wherever records complete out of order but a position
may only move over what is done: the batch loop's source offsets (a later message never
commits past an earlier one still in flight) and the text producer's file positions (a line is
never checkpointed before every line above it was acknowledged).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

TopicPartitionKey = tuple[str, int]
K = TypeVar("K", bound=Hashable)


class AckedPrefix(Generic[K]):
    """Keys in the order they were sent; :meth:`done` marks one acknowledged and returns the
    last key of the acknowledged prefix when that prefix grew (else None)."""

    __slots__ = ("_done", "_order")

    def __init__(self) -> None:
        self._order: deque[K] = deque()
        self._done: set[K] = set()

    def add(self, key: K) -> None:
        self._order.append(key)

    def done(self, key: K) -> K | None:
        done, order = self._done, self._order
        done.add(key)
        if not order or order[0] != key:
            return None  # an earlier key is still in flight: the prefix cannot move
        last = None
        while order and order[0] in done:
            done.discard(order[0])
            last = order.popleft()
        return last

    def __len__(self) -> int:
        """Keys sent and not yet part of the acknowledged prefix."""
        return len(self._order)

    def first(self) -> K | None:
        """The oldest key not yet in the acknowledged prefix."""
        return self._order[0] if self._order else None


@dataclass(slots=True)
class _Partition:
    prefix: AckedPrefix[int] = field(default_factory=AckedPrefix)
    committable: int | None = None  # next offset to commit (last finished + 1)


class OffsetTracker:
    def __init__(self) -> None:
        self._parts: dict[TopicPartitionKey, _Partition] = {}
        self._dirty: set[TopicPartitionKey] = set()

    def consumed(self, tp: TopicPartitionKey, offset: int) -> None:
        """Register a source message as in flight (its offset may not be committed yet)."""
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = _Partition()
        part.prefix.add(offset)

    def finished(self, tp: TopicPartitionKey, offset: int) -> None:
        """Every output of this message was acknowledged (or it had none)."""
        part = self._parts.get(tp)
        if part is None:
            return  # partition revoked meanwhile; the new owner re-reads it
        last = part.prefix.done(offset)
        if last is not None:
            part.committable = last + 1
            self._dirty.add(tp)

    def take_committable(self) -> dict[TopicPartitionKey, int]:
        """Offsets to store since the last call (next offset to read, per partition)."""
        out: dict[TopicPartitionKey, int] = {}
        for tp in self._dirty:
            part = self._parts.get(tp)
            if part is not None and part.committable is not None:
                out[tp] = part.committable
        self._dirty.clear()
        return out

    def in_flight(self) -> int:
        return sum(len(p.prefix) for p in self._parts.values())

    def rewind_points(self) -> dict[TopicPartitionKey, int]:
        """Per partition, the oldest offset not finished: where to read again after a batch
        failed, so that nothing past it is skipped."""
        out = {}
        for tp, part in self._parts.items():
            first = part.prefix.first()
            if first is not None:
                out[tp] = first
        return out

    def reset(self) -> None:
        """Forget every partition's in-flight offsets (they are about to be read again)."""
        self._parts.clear()
        self._dirty.clear()

    def forget(self, tps: list[TopicPartitionKey]) -> None:
        """Drop state of revoked partitions."""
        for tp in tps:
            self._parts.pop(tp, None)
            self._dirty.discard(tp)
