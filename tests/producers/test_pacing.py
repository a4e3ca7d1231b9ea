"""Pacing with a fake clock: a file keeps its rate, a live source is thinned to the target."""

from __future__ import annotations

import threading

import pytest

from streamsense.services.producers.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class ClockStop(threading.Event):
    """``wait`` advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.waited: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waited.append(timeout)
        self.clock.t += timeout
        return False


def test_wait_keeps_the_rate_when_work_takes_part_of_the_period() -> None:
    clock = FakeClock()
    stop = ClockStop(clock)
    pacer = Pacer(10, clock)
    starts = []
    for _ in range(5):
        pacer.wait(stop)
        starts.append(clock.t)
        clock.t += 0.03  # reading + encoding
    assert [round(b - a, 6) for a, b in zip(starts, starts[1:], strict=False)] == [0.1] * 4


def test_wait_does_not_burst_after_a_stall() -> None:
    clock = FakeClock()
    stop = ClockStop(clock)
    pacer = Pacer(10, clock)
    pacer.wait(stop)
    clock.t += 5.0  # the source stalled for 50 periods
    pacer.wait(stop)
    stop.waited.clear()
    pacer.wait(stop)
    assert stop.waited == [pytest.approx(0.1)]


def test_take_thins_a_30_fps_source_to_10_fps() -> None:
    clock = FakeClock()
    pacer = Pacer(10, clock)
    taken = 0
    for _ in range(300):  # 10 s of a 30 fps camera
        taken += pacer.take()
        clock.t += 1 / 30
    assert taken == pytest.approx(100, abs=2)


def test_no_target_means_no_pacing() -> None:
    pacer = Pacer(None)
    assert not pacer.active and pacer.take()
    pacer.wait(threading.Event())  # returns at once


def test_take_fills_the_slots_a_stalled_read_missed_from_the_burst_that_follows() -> None:
    """A 10 fps stream thinned to 5 fps whose reader stalls 0.4 s every 3 s (a busy host): the
    frames FFmpeg held come at once after each stall and fill the missed slots."""
    clock = FakeClock()
    pacer = Pacer(5, clock)
    taken, read_at = 0, clock.t
    for k in range(600):  # 60 s
        arrives = 100.0 + k / 10
        read_at = max(arrives, read_at + 0.001) + (0.4 if k % 30 == 29 else 0.0)
        clock.t = read_at
        taken += pacer.take()
    assert taken == pytest.approx(300, abs=2)


def test_take_keeps_every_frame_of_a_source_at_the_target_rate_despite_jitter() -> None:
    clock = FakeClock()
    pacer = Pacer(5, clock)
    taken = 0
    for k in range(300):
        clock.t = 100.0 + k / 5 + (-0.002 if k % 2 else 0.002)
        taken += pacer.take()
    assert taken >= 299


def test_take_after_a_long_stall_starts_afresh_instead_of_bursting() -> None:
    clock = FakeClock()
    pacer = Pacer(10, clock)
    assert pacer.take()
    clock.t += 5.0  # the stream hung for 5 s, then 50 held frames come at once
    assert sum(pacer.take() for _ in range(50)) == 1
    clock.t += 0.1
    assert pacer.take()
