"""Event times a producer's clock (or an attacker) got wrong, and window settings that would
make every event a long loop.

Before: one result stamped ten years ahead moved its source's stream time there and closed
every window up to then, so each later result of that source was ``late`` and never windowed
again (seen against the real app: ``late: 4`` of 5 normal results, the future window open).
"""

from __future__ import annotations

from typing import Any

import pytest

from streamsense.schemas.results import SentimentResult
from streamsense.services.analytics import synthetic as syn
from streamsense.services.analytics.app import AnalyticsApp
from streamsense.services.analytics.processor import Processor
from streamsense.services.analytics.rules import AlertEngine, RuleSet
from streamsense.services.analytics.settings import AnalyticsSettings
from streamsense.services.analytics.windows import WindowSpec
from streamsense.services.exceptions import ConfigError
from tests.analytics.helpers import SEN, B, S, records

SPECS = [WindowSpec("tumbling", 10 * S, 10 * S), WindowSpec("hopping", 20 * S, 10 * S)]
WALL_S = B / S  # the wall clock at the events' time
YEAR = 365 * 86_400 * S


def _text(max_future_s: int = 300) -> Processor:
    return Processor(
        "text", {SEN: SentimentResult}, SPECS, 0, AlertEngine([]), max_future_ns=max_future_s * S
    )


def test_an_event_years_ahead_is_dead_lettered_and_the_source_keeps_its_windows() -> None:
    proc, table = _text(), dict[str, Any]()
    msgs = [
        syn.sentiment("log", B + 1 * S, "negative"),
        syn.sentiment("log", B + 10 * YEAR, "positive"),
    ]
    msgs += [syn.sentiment("log", B + i * S, "negative") for i in (2, 3, 12, 25)]
    out = proc.process(records(SEN, msgs), table, WALL_S)

    assert [rec.offset for rec, _ in out.dead] == [1]
    reason = str(out.dead[0][1])
    assert "r.sentiment[0]@1" in reason and "ahead of this clock" in reason
    assert "STREAMSENSE_ANALYTICS_MAX_FUTURE_S" in reason
    assert out.applied == 5 and out.late == 0
    got = {(w.window, (w.window_start_ns - B) // S): w.values["messages"] for w in out.windows}
    assert got[("tumbling", 0)] == 3.0 and got[("tumbling", 10)] == 1.0
    assert table["log"]["t"] == B + 25 * S, "stream time stays on the source's real clock"


def test_events_within_the_bound_and_in_the_past_are_windowed_or_late_not_dead() -> None:
    proc, table = _text(max_future_s=60), dict[str, Any]()
    msgs = [
        syn.sentiment("cam", B + 1 * S, "neutral"),
        syn.sentiment("cam", B + 59 * S, "neutral"),  # a clock 59 s fast: accepted
        syn.sentiment("cam", B - 10 * YEAR, "neutral"),  # ten years old: late, not dead
        syn.sentiment("cam", -5 * S, "neutral"),  # before the epoch: late, not dead
    ]
    out = proc.process(records(SEN, msgs), table, WALL_S)
    assert not out.dead
    assert out.applied == 4 and out.late == 2
    assert table["cam"]["tot"]["s"]["messages"] == 4.0, "late events still count in the totals"
    assert table["cam"]["t"] == B + 59 * S


def test_the_app_passes_the_setting_to_both_kinds() -> None:
    settings = AnalyticsSettings(analytics_max_future_s=42)
    procs = AnalyticsApp._processors(settings, RuleSet())
    assert {k: p.max_future_ns for k, p in procs.items()} == {"camera": 42 * S, "text": 42 * S}
    assert AnalyticsSettings().analytics_max_future_s == 300


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"analytics_hopping_size_s": 86_400, "analytics_hopping_step_s": 1}, "86400"),
        ({"analytics_hopping_size_s": 1, "analytics_hopping_step_s": 1e-9}, "HOPPING_SIZE_S"),
        ({"analytics_tumbling_s": 1e-10}, "TUMBLING_S must be at least 1 microsecond"),
        ({"analytics_hopping_size_s": 1e-8, "analytics_hopping_step_s": 1e-8}, "at least"),
    ],
)
def test_window_settings_that_would_stall_every_event_are_refused(
    env: dict[str, float], error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        AnalyticsSettings(**env)  # type: ignore[arg-type]


def test_the_largest_allowed_hopping_ratio_is_accepted() -> None:
    s = AnalyticsSettings(analytics_hopping_size_s=1000, analytics_hopping_step_s=1)
    assert len(WindowSpec("h", 1000 * S, S).starts(B)) == 1000
    assert s.analytics_hopping_step_s == 1
