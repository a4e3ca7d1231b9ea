"""When an exactly-once round is committed (:meth:`Transactions.due`), on a scripted clock: at
once when the loop idles; at the interval while it is behind (full batches), so saturation pays
one transaction per interval; after ``KEEPING_UP_ROUNDS`` commits' time while it keeps up, so
results of a loop with room to spare do not wait out the whole interval."""

from __future__ import annotations

import pytest

from streamsense.services.kafka import transactions
from streamsense.services.kafka.transactions import KEEPING_UP_ROUNDS, Transactions
from tests.unit.test_transactions import GroupConsumer, ScriptedProducer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(transactions, "time", c)
    return c


def _open_round(clock: Clock, commit_ms: float) -> Transactions:
    t = Transactions(ScriptedProducer(), GroupConsumer(), interval_ms=100)  # type: ignore[arg-type]
    t.commit_ms = commit_ms
    t.due(idle=False)  # the loop looks, then runs the batch that opens the round
    t.begin()
    return t


def test_nothing_open_is_never_due(clock: Clock) -> None:
    t = Transactions(ScriptedProducer(), GroupConsumer(), interval_ms=100)  # type: ignore[arg-type]
    assert not t.due(idle=True, keeping_up=True)


def test_an_idle_loop_commits_at_once(clock: Clock) -> None:
    assert _open_round(clock, 5.0).due(idle=True)


def test_a_loop_behind_commits_at_the_interval(clock: Clock) -> None:
    t = _open_round(clock, 5.0)
    clock.now += 0.099
    assert not t.due(idle=False, keeping_up=False)
    clock.now += 0.002
    assert t.due(idle=False, keeping_up=False)


def test_a_loop_that_keeps_up_commits_after_a_few_commits_time(clock: Clock) -> None:
    t = _open_round(clock, 5.0)
    clock.now += (KEEPING_UP_ROUNDS * 5.0 - 1) / 1000  # a millisecond short
    assert not t.due(idle=False, keeping_up=True)
    clock.now += 0.002
    assert t.due(idle=False, keeping_up=True)
    # a slow commit (a loaded broker) stretches the round, up to the interval and no further
    slow = _open_round(clock, 60.0)
    clock.now += 0.099
    assert not slow.due(idle=False, keeping_up=True)
    clock.now += 0.002
    assert slow.due(idle=False, keeping_up=True)
