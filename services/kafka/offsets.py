"""Which source offsets may be committed: only those whose every output Kafka acknowledged.

Outputs are acknowledged out of order; the tracker advances a partition's commit point over the
contiguous prefix of fully acknowledged source offsets, so a later message never commits past
an earlier one that is still in flight.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TopicPartitionKey = tuple[str, int]

_UNKNOWN = -1  # outputs not yet known (message consumed, handler not done)


@dataclass(slots=True)
class _Partition:
    order: deque[int] = field(default_factory=deque)
    remaining: dict[int, int] = field(default_factory=dict)
    committable: int | None = None  # next offset to commit (last done + 1)


class OffsetTracker:
    def __init__(self) -> None:
        self._parts: dict[TopicPartitionKey, _Partition] = {}
        self._dirty: set[TopicPartitionKey] = set()

    def consumed(self, tp: TopicPartitionKey, offset: int) -> None:
        """Register a source message as in flight (its offset may not be committed yet)."""
        part = self._parts.setdefault(tp, _Partition())
        part.order.append(offset)
        part.remaining[offset] = _UNKNOWN

    def expect(self, tp: TopicPartitionKey, offset: int, outputs: int) -> None:
        """The handler produced ``outputs`` records for this message (0: done at once)."""
        part = self._parts[tp]
        part.remaining[offset] = outputs
        if outputs == 0:
            self._advance(tp, part)

    def acked(self, tp: TopicPartitionKey, offset: int) -> None:
        """One output of the message was acknowledged by Kafka."""
        part = self._parts.get(tp)
        if part is None or offset not in part.remaining:
            return  # partition revoked meanwhile; the new owner re-reads it
        part.remaining[offset] -= 1
        if part.remaining[offset] == 0:
            self._advance(tp, part)

    def _advance(self, tp: TopicPartitionKey, part: _Partition) -> None:
        moved = False
        while part.order and part.remaining[part.order[0]] == 0:
            off = part.order.popleft()
            del part.remaining[off]
            part.committable = off + 1
            moved = True
        if moved:
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
