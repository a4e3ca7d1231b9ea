"""The processor without Kafka: exact window values, dead letters, idempotent replays."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamsense.schemas.registry import encode
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.services.analytics import synthetic as syn
from streamsense.services.analytics.processor import InRecord, Processor
from streamsense.services.analytics.rules import AlertEngine, Rule
from streamsense.services.analytics.windows import WindowSpec
from tests.analytics.helpers import DET, SEG, SEN, B, S, event_time, records

SPECS = [WindowSpec("tumbling", 10 * S, 10 * S), WindowSpec("hopping", 20 * S, 10 * S)]


def camera(rules: list[Rule] | None = None, grace_s: int = 0) -> Processor:
    return Processor(
        "camera", {DET: DetectionResult, SEG: SegmentResult}, SPECS, grace_s * S,
        AlertEngine(rules or []),
    )  # fmt: skip


def text(rules: list[Rule] | None = None) -> Processor:
    return Processor("text", {SEN: SentimentResult}, SPECS, 0, AlertEngine(rules or []))


def test_camera_windows_have_exact_counts() -> None:
    proc, table = camera(), {}
    dets = [
        syn.detection("cam", B + 1 * S, {"person": 2, "car": 1}),
        syn.detection("cam", B + 2 * S, {"person": 5}),
        syn.detection("cam", B + 3 * S, {"person": 1}, score=0.3),  # below min_score
        syn.detection("cam", B + 12 * S, {"dog": 1}),
    ]
    segs = [
        syn.segment("cam", B + 1 * S, 0.30),
        syn.segment("cam", B + 2 * S, 0.01),  # below the person-area threshold
        syn.segment("cam", B + 4 * S, 0.10),
        syn.segment("cam", B + 45 * S, 0.0),  # moves event time on: closes everything before
    ]
    both = records(DET, dets) + records(SEG, segs)
    both.sort(key=event_time)  # arrival in event-time order across the two topics
    out = proc.process(both, table, wall_s=100.0)
    got = {(w.window, (w.window_start_ns - B) // S): w.values for w in out.windows}
    assert sorted(got) == [
        ("hopping", -10), ("hopping", 0), ("hopping", 10), ("tumbling", 0), ("tumbling", 10),
    ]  # fmt: skip
    assert got[("tumbling", 0)] == {
        "frames": 3.0, "frames.detections": 3.0, "frames.segments": 3.0,
        "people.max": 5.0, "people.frames": 2.0, "people.present": 2 / 3,
        "count.person": 7.0, "count.car": 1.0,
    }  # fmt: skip
    assert got[("tumbling", 10)]["count.dog"] == 1.0 and got[("tumbling", 10)]["frames"] == 1.0
    assert got[("hopping", 0)]["frames.detections"] == 4.0
    assert got[("hopping", 0)]["count.person"] == 7.0
    assert out.applied == 8 and out.late == 0 and not out.dead
    assert all(w.kind == "camera" and w.source_id == "cam" for w in out.windows)


def test_text_windows_mean_sentiment_and_negative_rate() -> None:
    proc, table = text(), {}
    labels = ["negative", "positive", "negative", "neutral"]
    msgs = [syn.sentiment("t1", B + i * S, lab) for i, lab in enumerate(labels)]
    msgs.append(syn.sentiment("t1", B + 30 * S, "positive"))
    out = proc.process(records(SEN, msgs), table, 0.0)
    w = next(w for w in out.windows if w.window == "tumbling" and w.window_start_ns == B)
    assert w.values == {
        "messages": 4.0, "mean_sentiment": -0.25, "negative_rate": 0.5,
        "count.negative": 2.0, "count.positive": 1.0, "count.neutral": 1.0,
    }  # fmt: skip


def test_undecodable_or_wrong_schema_records_are_dead_letters_not_errors() -> None:
    proc, table = camera(), {}
    good = records(DET, [syn.detection("cam", B, {"person": 1})])
    bad = [
        InRecord(DET, 0, 10, b"cam", b"not json"),
        InRecord(DET, 0, 11, b"cam", None),
        InRecord(DET, 0, 12, b"cam", encode(syn.segment("cam", B, 0.5))),  # wrong topic
    ]
    out = proc.process(good + bad, table, 0.0)
    assert out.applied == 1
    assert [(r.offset, type(e).__name__) for r, e in out.dead] == [
        (10, "SchemaError"), (11, "SchemaError"), (12, "SchemaError"),
    ]  # fmt: skip
    assert "expected 'streamsense.result.detection'" in str(out.dead[2][1])


def test_reprocessing_a_batch_changes_nothing() -> None:
    proc, table = camera(), {}
    recs = records(DET, [syn.detection("cam", B + i * S, {"person": 1}) for i in range(30)])
    proc.process(recs, table, 0.0)
    before = copy.deepcopy(table)
    out = proc.process(recs, table, 0.0)
    assert table == before
    assert out.applied == 0 and out.duplicates == {DET: 30} and not out.windows


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(0, 40), min_size=1, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    crash_at=st.integers(0, 40),
    rewind=st.integers(0, 40),
)
def test_any_batching_and_any_replay_after_a_crash_gives_the_same_table(
    times: list[int], cuts: list[int], crash_at: int, rewind: int
) -> None:
    """The at-least-once contract: the table after (process a prefix, crash, restart from an
    older committed offset, process everything) equals processing everything once."""
    msgs = [syn.detection(f"cam{t % 3}", B + t * S, {"person": t % 4}) for t in times]
    recs = records(DET, msgs)

    once: dict[str, Any] = {}
    camera().process(recs, once, 0.0)

    crash = min(crash_at, len(recs))
    committed = max(0, crash - rewind)
    table: dict[str, Any] = {}
    proc = camera()
    bounds = sorted({0, crash, *[c for c in cuts if c < crash]})
    for a, b in zip(bounds, [*bounds[1:], crash], strict=True):
        proc.process(recs[a:b], table, 0.0)
    recovered = copy.deepcopy(table)  # the changelog holds what was applied before the crash
    restarted = camera()
    out = restarted.process(recs[committed:], recovered, 0.0)
    assert recovered == once
    assert sum(out.duplicates.values()) == crash - committed


def test_tick_closes_windows_of_quiet_sources_only() -> None:
    proc, table = camera(), {}
    proc.process(records(DET, [syn.detection("quiet", B, {"person": 1})]), table, wall_s=100.0)
    proc.process(records(DET, [syn.detection("busy", B, {"person": 1})], start=1), table, 130.0)
    out = proc.tick(table, now_s=131.0, idle_close_s=30.0)
    assert {w.source_id for w in out.windows} == {"quiet"}
    assert list(out.rows) == ["quiet"]
    assert proc.tick(table, 131.0, 30.0).windows == []


def test_tick_forgets_sources_silent_past_the_retention_once_closed() -> None:
    proc, table = camera(), {}
    proc.process(records(DET, [syn.detection("gone", B, {"person": 1})]), table, wall_s=100.0)
    proc.process(records(DET, [syn.detection("here", B, {"person": 1})], start=1), table, 190.0)
    # silent past the retention, but its windows are still open: they close first
    out = proc.tick(table, now_s=200.0, idle_close_s=1e9, forget_after_s=50.0)
    assert out.forget == []
    out = proc.tick(table, now_s=200.0, idle_close_s=30.0, forget_after_s=50.0)
    assert out.forget == [] and {w.source_id for w in out.windows} == {"gone"}
    table.update({s: row.d for s, row in out.rows.items()})
    out = proc.tick(table, now_s=200.0, idle_close_s=30.0, forget_after_s=50.0)
    assert out.forget == ["gone"], "closed and silent for 100 s: forgotten"
    assert proc.tick(table, 200.0, 30.0, forget_after_s=0.0).forget == [], "0: never"


def test_a_flood_of_new_sources_is_bounded_counted_and_known_sources_go_on() -> None:
    """Before: every new source id made a row (memory, a changelog record, a Redis hash), so
    a producer inventing ids grew the app without bound, kept for the source TTL (7 days)."""
    proc = Processor("text", {SEN: SentimentResult}, SPECS, 0, AlertEngine([]), max_sources=3)
    table: dict[str, Any] = {}
    known = [syn.sentiment(f"log-{i}", B + i * S, "positive") for i in range(3)]
    flood = [syn.sentiment(f"new-{i}", B + 5 * S, "negative") for i in range(50)]
    again = [syn.sentiment("log-0", B + 6 * S, "negative")]
    out = proc.process(records(SEN, known + flood + again), table, 0.0)
    assert sorted(table) == ["log-0", "log-1", "log-2"]
    assert (out.applied, out.sources_over, out.dead) == (4, 50, [])
    assert sum(out.consumed.values()) == 54, "skipped records are consumed, not left behind"
    # a known source leaving makes room again
    del table["log-2"]
    later = proc.process(records(SEN, [syn.sentiment("new-7", B + 7 * S, "neutral")]), table, 0.0)
    assert (later.applied, later.sources_over) == (1, 0) and "new-7" in table
