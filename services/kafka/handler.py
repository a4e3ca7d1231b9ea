"""What a service plugs into the batch loop: turn a batch of messages into output records.

``prepare`` runs in a worker thread while the loop's thread runs ``process`` on the previous
batch (e.g. JPEG decode overlapped with the model). ``process`` returns one outcome per input
message, in order: the records to produce for it (possibly none), or the exception that makes
it a dead letter. A handler that raises from ``process`` makes the loop retry the messages one
by one, so only the poison ones are dead-lettered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from confluent_kafka import Message

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class OutRecord:
    topic: str
    value: bytes
    key: bytes | str | None = None
    headers: Sequence[tuple[str, bytes | str]] | None = None


Outcome = Sequence[OutRecord] | BaseException


class BatchHandler(Generic[P]):
    """Base handler; override ``process`` (and ``prepare`` to overlap work with it)."""

    #: Whether ``prepare`` and ``process`` also get the stand-ins of records the consumer
    #: cannot read (:mod:`.unreadable`; ``m.error()`` is set) and give their outcomes; by
    #: default the loop dead-letters them itself and the handler never sees them.
    sees_unreadable = False

    def prepare(self, messages: list[Message]) -> P:
        return messages  # type: ignore[return-value]

    def process(self, prepared: P) -> list[Outcome]:
        raise NotImplementedError

    def between_batches(self) -> None:
        """Called on the loop's thread between batches (e.g. to hot-swap a model)."""

    def stop(self) -> None:
        """The loop was asked to stop (any thread, a signal handler too): give up waiting on
        anything slow, e.g. retries of an unreachable store."""

    def health(self) -> tuple[bool, dict[str, Any]]:
        """The handler's part of the loop's health: whether it can do its job, and details.
        When it cannot, ``detail["problem"]`` says why in words; the loop lists it with its
        own problems."""
        return True, {}

    def fetch_limit(self, configured: int) -> int:
        """How many messages the loop may fetch for the next batch (``max_batch`` unless the
        handler is catching up and skipping is cheaper than serving)."""
        return configured

    def prefetch(self) -> bool:
        """Whether the loop may fetch and prepare the next batch while this one runs (it
        should, unless the handler picks among the newest inputs and a prefetched batch would
        be a model run old by the time it runs)."""
        return True

    def start_positions(
        self, assigned: list[tuple[str, int]], committed: Callable[[], dict[tuple[str, int], int]]
    ) -> dict[tuple[str, int], int]:
        """Offsets to start newly assigned partitions at, where the handler keeps its own
        (the Redis sink does); the others start at the group's committed offsets, which
        ``committed()`` asks the group coordinator for (empty when it cannot say)."""
        return {}

    def summary(self) -> dict[str, Any]:
        """Counters for the loop's periodic one-line summary (e.g. ``{"skipped": 3}``)."""
        return {}

    def close(self) -> None:
        """Release resources once the loop has drained."""
