from __future__ import annotations

from streamsense.services.kafka.offsets import OffsetTracker

TP = ("t", 0)


def test_commit_point_never_passes_an_unfinished_offset() -> None:
    tr = OffsetTracker()
    for off in (10, 11, 12):
        tr.consumed(TP, off)
    tr.finished(TP, 12)
    tr.finished(TP, 11)
    assert tr.take_committable() == {}  # 10 still in flight
    tr.finished(TP, 10)
    assert tr.take_committable() == {TP: 13}
    assert tr.in_flight() == 0


def test_partitions_advance_independently() -> None:
    tr = OffsetTracker()
    other = ("t", 1)
    tr.consumed(TP, 0)
    tr.consumed(other, 5)
    tr.consumed(TP, 1)
    tr.finished(TP, 1)
    tr.finished(other, 5)
    assert tr.take_committable() == {other: 6}
    tr.finished(TP, 0)
    assert tr.take_committable() == {TP: 2}
    assert tr.take_committable() == {}


def test_revoked_partitions_are_forgotten_and_late_acks_ignored() -> None:
    tr = OffsetTracker()
    tr.consumed(TP, 5)
    tr.forget([TP])
    tr.finished(TP, 5)
    assert tr.take_committable() == {}
    assert tr.in_flight() == 0
