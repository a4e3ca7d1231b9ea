from __future__ import annotations

from services.kafka.offsets import OffsetTracker

TP = ("t", 0)


def test_commit_point_never_passes_an_unacknowledged_offset() -> None:
    tr = OffsetTracker()
    for off in (10, 11, 12):
        tr.consumed(TP, off)
    tr.expect(TP, 10, 1)
    tr.expect(TP, 11, 2)
    tr.expect(TP, 12, 1)
    tr.acked(TP, 12)
    tr.acked(TP, 11)
    assert tr.take_committable() == {}  # 10 still in flight
    tr.acked(TP, 10)
    assert tr.take_committable() == {TP: 11}  # 11 has one output left
    tr.acked(TP, 11)
    assert tr.take_committable() == {TP: 13}
    assert tr.in_flight() == 0


def test_messages_without_outputs_are_done_at_once_but_in_order() -> None:
    tr = OffsetTracker()
    tr.consumed(TP, 0)
    tr.consumed(TP, 1)
    tr.expect(TP, 1, 0)
    assert tr.take_committable() == {}
    tr.expect(TP, 0, 0)
    assert tr.take_committable() == {TP: 2}


def test_revoked_partitions_are_forgotten_and_late_acks_ignored() -> None:
    tr = OffsetTracker()
    tr.consumed(TP, 5)
    tr.expect(TP, 5, 1)
    tr.forget([TP])
    tr.acked(TP, 5)
    assert tr.take_committable() == {}
    assert tr.in_flight() == 0
