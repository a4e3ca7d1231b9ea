"""Adaptive batching: how the loop takes its next batch from the consumer."""

from __future__ import annotations

from typing import NamedTuple

from confluent_kafka import Consumer, Message

#: How long an idle loop blocks for its next message (it wakes for housekeeping in between).
IDLE_WAIT_S = 0.1


class Fetched(NamedTuple):
    messages: list[Message]
    #: the loop was idle (nothing buffered) and these woke it: a quiet stream, nothing to
    #: overlap their preparation with
    woke: bool


def adaptive_fetch(
    consumer: Consumer, n: int, *, busy: bool, full: bool, max_wait_s: float
) -> Fetched:
    """Up to ``n`` messages: what is buffered, at once; when nothing is, the first message as
    soon as it arrives (no batch waits out ``max_wait_s`` alone); only under sustained load
    (``full``: the last batch was full) does a batch wait up to ``max_wait_s`` to fill.
    ``busy`` (a batch is ready to run): never wait at all."""
    msgs = consumer.consume(n, 0)
    if busy:
        return Fetched(msgs, woke=False)
    idle = not msgs
    if idle:
        msgs = consumer.consume(1, IDLE_WAIT_S)
        if msgs and n > 1:
            msgs += consumer.consume(n - 1, 0)
    if msgs and len(msgs) < n and full and max_wait_s:
        msgs += consumer.consume(n - len(msgs), max_wait_s)
    return Fetched(msgs, woke=idle and bool(msgs))
