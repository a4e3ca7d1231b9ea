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
