"""The per-source bound and the replay filter without Kafka: a fake clock, plain strings."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from streamsense.services.learner.admission import (
    DUPLICATE,
    SOURCE_SHARE,
    Admission,
    AdmissionConfig,
    RecentExamples,
    SourceShare,
    fair_cap,
)
from streamsense.services.learner.replay import ReplayBuffer


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _stream(flood_per_honest: int, rounds: int, honest: tuple[str, ...] = ("honest",)) -> list[str]:
    out = []
    for _ in range(rounds):
        out += list(honest)
        out += ["flood"] * flood_per_honest
    return out


def test_fair_cap_is_the_share_but_never_below_an_equal_split() -> None:
    assert fair_cap(0.25, 1, 100) == 100  # alone: everything
    assert fair_cap(0.25, 2, 100) == 50
    assert fair_cap(0.25, 4, 100) == 25
    assert fair_cap(0.25, 10, 100) == 25
    assert fair_cap(1.0, 10, 100) == 100  # no bound


def test_a_lone_source_learns_everything_it_sends() -> None:
    share = SourceShare(0.25, 60.0, Clock())
    assert all(share.admit("only") for _ in range(1000))


def test_a_flood_cannot_push_out_another_source_and_holds_at_most_an_equal_split() -> None:
    share = SourceShare(0.25, 60.0, Clock())
    admitted = Counter(s for s in _stream(100, 20) if share.admit(s))
    assert admitted["honest"] == 20  # every honest label learned
    assert admitted["flood"] <= 21  # of 2,000 sent: no more than the honest source (+1)


def test_with_many_sources_a_flood_holds_at_most_its_share() -> None:
    share = SourceShare(0.25, 60.0, Clock())
    honest = tuple(f"h{i}" for i in range(6))
    sent = _stream(200, 30, honest)
    admitted = Counter(s for s in sent if share.admit(s))
    assert all(admitted[h] == 30 for h in honest)
    total = sum(admitted.values())
    assert admitted["flood"] <= 0.25 * total + 1, admitted


def test_the_share_is_counted_per_interval_and_expires() -> None:
    clock = Clock()
    share = SourceShare(0.25, 60.0, clock)
    for s in _stream(50, 4):
        share.admit(s)
    assert not share.admit("flood")
    clock.t += 61  # the honest labels have left the interval: the flood is alone again
    assert share.admit("flood")
    assert share.shares() == {"flood": 1}


def test_replays_are_recognised_up_to_space_and_case_and_the_memory_is_bounded() -> None:
    recent = RecentExamples(4)
    assert not recent.seen_before("a", "the flight was great", "positive")
    assert recent.seen_before("a", "The  flight was GREAT ", "positive")
    assert not recent.seen_before("a", "the flight was great", "negative")  # disagreement
    assert not recent.seen_before("b", "the flight was great", "positive")  # another source
    for i in range(4):
        recent.seen_before("a", f"other {i}", "neutral")
    assert not recent.seen_before("a", "the flight was great", "positive")  # forgotten: bounded
    off = RecentExamples(0)
    assert not off.seen_before("a", "x", "y") and not off.seen_before("a", "x", "y")


def test_admission_counts_each_reason_and_logs_once_per_source_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    gate = Admission(AdmissionConfig(max_share=0.25, window_s=60.0), "m", clock)
    verdicts = [gate.verdict(s, f"text {i}", "positive") for i, s in enumerate(_stream(10, 5))]
    assert verdicts.count(None) + verdicts.count(SOURCE_SHARE) == 55
    assert gate.verdict("honest", "text 0", "positive") == DUPLICATE
    assert gate.skipped == {SOURCE_SHARE: verdicts.count(SOURCE_SHARE), DUPLICATE: 1}
    report = gate.report()
    assert report["over_share_sources"] == {"flood": verdicts.count(SOURCE_SHARE)}
    with caplog.at_level(logging.WARNING, "streamsense.services.learner.admission"):
        gate.log_due()  # not yet: once per interval
        assert not caplog.records
        clock.t += 61
        gate.log_due()
        gate.log_due()
    [line] = caplog.records
    assert "'flood'" in line.getMessage() and "STREAMSENSE_LEARNER_SOURCE_MAX_SHARE" in (
        line.getMessage()
    )


def test_replay_buffer_with_one_source_is_a_plain_reservoir() -> None:
    buf: ReplayBuffer[int] = ReplayBuffer(100, seed=1, max_share=0.25)
    buf.add(list(range(10_000)), [0] * 10_000)
    assert len(buf) == 100 and buf.held() == {"": 100}
    xs, _ = buf.sample(100)
    assert len(set(xs)) == 100
    assert 3000 < sum(xs) / len(xs) < 7000  # drawn from the whole history, not the newest


def test_a_flood_cannot_push_another_source_out_of_the_replay_buffer() -> None:
    bounded: ReplayBuffer[str] = ReplayBuffer(200, seed=2, max_share=0.25)
    unbounded: ReplayBuffer[str] = ReplayBuffer(200, seed=2, max_share=1.0)
    for buf in (bounded, unbounded):
        buf.add([f"h{i}" for i in range(60)], [1] * 60, ["honest"] * 60)
        buf.add([f"f{i}" for i in range(20_000)], [0] * 20_000, ["flood"] * 20_000)
    assert bounded.held() == {"honest": 60, "flood": 140}  # the flood only replaced its own
    assert unbounded.held()["honest"] < 10  # without the bound it is pushed out
    # a source under its share gets in at the expense of the one over it
    bounded.add(["h-new"] * 30, [1] * 30, ["honest"] * 30)
    assert bounded.held() == {"honest": 90, "flood": 110}
    for i in range(5):
        bounded.add([f"o{i}-{j}" for j in range(100)], [2] * 100, [f"o{i}"] * 100)
    held = bounded.held()
    assert len(bounded) == 200 and max(held.values()) <= fair_cap(0.25, len(held), 200), held


def test_a_round_rolled_back_is_judged_afresh_when_retried() -> None:
    gate = Admission(AdmissionConfig(max_share=0.25, window_s=60.0), "m", Clock())
    gate.verdict("a", "kept", "positive")  # an earlier round, not rolled back
    gate.begin()
    first = [gate.verdict(s, f"text {i}", "positive") for i, s in enumerate(_stream(3, 4))]
    assert gate.verdict("a", "kept", "positive") == DUPLICATE
    before = gate.report()
    gate.rollback()  # the round's training raised: the loop retries it label by label
    assert gate.report()["learned_per_source"] == {"a": 1} and not gate.skipped
    again = [gate.verdict(s, f"text {i}", "positive") for i, s in enumerate(_stream(3, 4))]
    assert again == first  # not taken for replays of themselves, not charged twice
    assert gate.verdict("a", "kept", "positive") == DUPLICATE
    assert gate.report() == before
