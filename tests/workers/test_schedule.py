"""The frame scheduler without Kafka: newest frame per camera when behind, cameras in turn."""

from __future__ import annotations

from collections import Counter

from streamsense.services.workers.schedule import CATCH_UP_FACTOR, Candidate, FrameScheduler

MS = 1_000_000


def frames(per_camera: dict[str, int], age_ms: int = 10) -> list[Candidate]:
    out = []
    for cam, n in per_camera.items():
        out += [Candidate(cam, seq, (age_ms + (n - seq) * 33) * MS) for seq in range(n)]
    return out


def test_a_worker_that_keeps_up_models_every_frame() -> None:
    s = FrameScheduler(model_batch=4, budget_ms=500)
    batch = frames({"a": 1, "b": 1, "c": 1, "d": 1})
    assert s.choose(batch) == [True] * 4
    assert not s.behind and s.fetch_limit() == 4 and not s.skipped


def test_behind_serves_the_newest_frame_of_each_camera_and_counts_the_rest() -> None:
    s = FrameScheduler(model_batch=4, budget_ms=500)
    batch = frames({"a": 3, "b": 3, "c": 3, "d": 3}, age_ms=700)
    keep = s.choose(batch)
    kept = [f for f, k in zip(batch, keep, strict=True) if k]
    assert sorted((f.camera, f.seq) for f in kept) == [("a", 2), ("b", 2), ("c", 2), ("d", 2)]
    assert s.behind and s.skipped == Counter({"a": 2, "b": 2, "c": 2, "d": 2})
    assert s.fetch_limit() == 4 * CATCH_UP_FACTOR  # skipping is cheap: drain the queue


def test_a_fresh_backlog_is_served_in_full() -> None:
    s = FrameScheduler(model_batch=2, budget_ms=500)
    assert s.choose(frames({"a": 3, "b": 3})) == [True] * 6
    assert not s.behind


def test_cameras_take_turns_when_more_wait_than_one_batch_holds() -> None:
    s = FrameScheduler(model_batch=4, budget_ms=500)
    served: Counter[str] = Counter()
    cams = {c: 1 for c in "abcdefgh"}
    for _ in range(4):
        batch = frames(cams, age_ms=900)
        served.update(f.camera for f, k in zip(batch, s.choose(batch), strict=True) if k)
    assert served == Counter({c: 2 for c in "abcdefgh"})


def test_a_fast_camera_cannot_starve_a_slow_one() -> None:
    s = FrameScheduler(model_batch=1, budget_ms=200)
    served: Counter[str] = Counter()
    for i in range(10):
        batch = frames({"fast": 30, **({"slow": 1} if i % 5 == 0 else {})}, age_ms=300)
        served.update(f.camera for f, k in zip(batch, s.choose(batch), strict=True) if k)
    assert served["slow"] == 2, served  # each of its frames served, in the batch it came in
    assert served["fast"] == 8


def test_a_budget_of_zero_turns_the_policy_off() -> None:
    s = FrameScheduler(model_batch=1, budget_ms=0)
    assert s.choose(frames({"a": 5}, age_ms=10_000)) == [True] * 5
    assert not s.behind


def test_fresh_frames_are_behind_when_modelling_them_all_would_miss_the_budget() -> None:
    """The newest frames are young, but the model's recent time per frame says serving the
    whole fetch would finish after the budget: newest per camera instead."""
    s = FrameScheduler(model_batch=8, budget_ms=500)
    s.observe(model_ms=960, frames=4)  # 240 ms a frame
    batch = frames({"a": 4, "b": 4}, age_ms=20)  # oldest 152 ms: 152 + 8 * 240 > 500
    assert sum(s.choose(batch)) == 2 and s.behind
    for _ in range(5):  # the model got fast (10 ms a frame); the estimate follows
        s.observe(model_ms=40, frames=4)
    assert 10 < s.ms_per_frame < 50
    assert s.choose(frames({"a": 2, "b": 2}, age_ms=20)) == [True] * 4
    assert not s.behind


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_frames_arriving_faster_than_the_model_serves_them_make_it_behind_steadily() -> None:
    """At 1.7x its capacity a worker used to take turns: one batch behind, the next modelling
    the two batches' worth that arrived meanwhile (young enough for the budget), which made the
    frames after them wait for it. Arrivals over capacity keep it behind every batch, and it
    models every frame again once they fall to 80% of capacity."""
    clock = Clock()
    s = FrameScheduler(model_batch=4, budget_ms=500, clock=clock)
    s.observe(model_ms=176, frames=4)  # 44 ms a frame in full batches: 22.7 frames/s
    served = []
    for _ in range(12):  # 46 frames/s, fetched every 176 ms: 8 frames at a time, 2 per camera
        clock.now += 0.176
        batch = frames({"a": 2, "b": 2, "c": 2, "d": 2}, age_ms=10)
        served.append(sum(s.choose(batch)))
    assert served[:5] == [8] * 5  # under 1 s of arrivals: the budget alone decides
    assert served[6:] == [4] * 6 and s.behind and s.overloaded  # the newest of each camera
    assert s.load is not None and 1.8 < s.load < 2.2
    for _ in range(12):  # 17 frames/s: 75% of capacity
        clock.now += 0.235
        batch = frames({"a": 1, "b": 1, "c": 1, "d": 1}, age_ms=10)
        served.append(sum(s.choose(batch)))
    assert served[-4:] == [4] * 4 and not s.behind and not s.overloaded
    assert s.load is not None and 0.6 < s.load < 0.8


def test_a_pause_forgets_the_overload() -> None:
    clock = Clock()
    s = FrameScheduler(model_batch=4, budget_ms=500, clock=clock)
    s.observe(model_ms=176, frames=4)
    for _ in range(10):
        clock.now += 0.176
        s.choose(frames({"a": 2, "b": 2, "c": 2, "d": 2}, age_ms=10))
    assert s.overloaded
    clock.now += 10  # the cameras stopped; one comes back
    assert s.choose(frames({"a": 2}, age_ms=10)) == [True, True]
    assert not s.overloaded and not s.behind


def test_small_batches_say_nothing_about_capacity() -> None:
    """A quiet camera's batches of one cost more per frame than full batches; they must not
    make the worker think it is overloaded."""
    clock = Clock()
    s = FrameScheduler(model_batch=4, budget_ms=500, clock=clock)
    for _ in range(30):
        clock.now += 0.1
        s.observe(model_ms=90, frames=1)  # 90 ms for one frame, 10 frames/s arriving
        assert s.choose(frames({"a": 1})) == [True]
    assert s.load is None and not s.behind
