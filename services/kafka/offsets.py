"""Which source offsets may be committed: only those whose every output Kafka acknowledged.

Batches complete out of order; the tracker advances a partition's commit point over the
contiguous prefix of finished source offsets, so a later message never commits past an earlier
one that is still in flight.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TopicPartitionKey = tuple[str, int]


@dataclass(slots=True)
class _Partition:
    order: deque[int] = field(default_factory=deque)
    finished: set[int] = field(default_factory=set)
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
        part.order.append(offset)

    def finished(self, tp: TopicPartitionKey, offset: int) -> None:
        """Every output of this message was acknowledged (or it had none)."""
        part = self._parts.get(tp)
        if part is None:
            return  # partition revoked meanwhile; the new owner re-reads it
        part.finished.add(offset)
        order = part.order
        if order and order[0] == offset:
            done = part.finished
            while order and order[0] in done:
                done.discard(order[0])
                part.committable = order.popleft() + 1
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
        return sum(len(p.order) for p in self._parts.values())

    def forget(self, tps: list[TopicPartitionKey]) -> None:
        """Drop state of revoked partitions."""
        for tp in tps:
            self._parts.pop(tp, None)
            self._dirty.discard(tp)
