from __future__ import annotations

import pytest

from streamsense.services.analytics.windows import Observation, SourceState, WindowSpec

S = 1_000_000_000
TUMBLING = WindowSpec("tumbling", 10 * S, 10 * S)
HOPPING = WindowSpec("hopping", 20 * S, 10 * S)


def test_window_starts_cover_exactly_the_windows_containing_the_time() -> None:
    assert TUMBLING.starts(0) == [0]
    assert TUMBLING.starts(10 * S - 1) == [0]
    assert TUMBLING.starts(10 * S) == [10 * S]
    assert HOPPING.starts(15 * S) == [0, 10 * S]
    assert HOPPING.starts(20 * S) == [10 * S, 20 * S]
    assert WindowSpec("h", 60 * S, 10 * S).starts(65 * S) == [10 * S * k for k in range(1, 7)]
    assert TUMBLING.starts(-1) == [-10 * S]


def test_window_spec_rejects_a_step_larger_than_the_size() -> None:
    with pytest.raises(ValueError, match="step <= size"):
        WindowSpec("bad", 10, 20)


def _obs(n: float = 1.0, people: float = 0.0) -> Observation:
    return Observation(
        sums={"frames.detections": 1.0, "count.person": n}, maxes={"people.max": people}
    )


def test_windows_close_on_event_time_plus_grace_with_exact_sums() -> None:
    row = SourceState.new(partition=2)
    specs = [TUMBLING, HOPPING]
    closed, late = row.apply("t", 0, 1 * S, _obs(2, 2), specs, grace_ns=2 * S, wall_s=1.0)
    assert closed == [] and not late
    row.apply("t", 1, 9 * S, _obs(3, 3), specs, 2 * S, 2.0)
    closed, _ = row.apply("t", 2, 11 * S, _obs(1, 1), specs, 2 * S, 3.0)
    assert closed == []  # 11 s - 2 s grace < 10 s: [0, 10) still open
    closed, _ = row.apply("t", 3, 12 * S, _obs(1, 1), specs, 2 * S, 4.0)
    assert [(c.window, c.start_ns, c.end_ns) for c in closed] == [
        ("tumbling", 0, 10 * S),
        ("hopping", -10 * S, 10 * S),
    ]
    assert closed[0].acc == {
        "s": {"frames.detections": 2.0, "count.person": 5.0},
        "m": {"people.max": 3.0},
    }
    assert row.events == 4 and row.totals["s"]["count.person"] == 7.0
    assert row.stream_ns == 12 * S and row.partition == 2


def test_an_event_for_a_closed_window_is_late_but_still_counted_in_totals() -> None:
    row = SourceState.new(0)
    row.apply("t", 0, 1 * S, _obs(), [TUMBLING], 0, 0.0)
    closed, _ = row.apply("t", 1, 10 * S, _obs(), [TUMBLING], 0, 0.0)
    assert [c.start_ns for c in closed] == [0]
    closed, late = row.apply("t", 2, 5 * S, _obs(), [TUMBLING], 0, 0.0)
    assert late and closed == []
    assert row.d["late"] == 1 and row.events == 3
    assert row.d["win"]["tumbling"] == {
        str(10 * S): {
            "s": {"frames.detections": 1.0, "count.person": 1.0},
            "m": {"people.max": 0.0},
        }
    }


def test_offsets_per_topic_make_redeliveries_recognisable() -> None:
    row = SourceState.new(0)
    row.apply("a", 5, 1, _obs(), [TUMBLING], 0, 0.0)
    assert row.is_duplicate("a", 5) and row.is_duplicate("a", 4)
    assert not row.is_duplicate("a", 6)
    assert not row.is_duplicate("b", 0)


def test_close_all_flushes_every_open_window_and_later_events_for_them_are_late() -> None:
    row = SourceState.new(0)
    row.apply("t", 0, 15 * S, _obs(), [TUMBLING, HOPPING], 0, 0.0)
    closed = row.close_all([TUMBLING, HOPPING])
    assert [(c.window, c.start_ns) for c in closed] == [
        ("tumbling", 10 * S),
        ("hopping", 0),
        ("hopping", 10 * S),
    ]
    assert not row.has_open_windows()
    _, late = row.apply("t", 1, 16 * S, _obs(), [TUMBLING, HOPPING], 0, 0.0)
    assert late
