"""Rules that could never fire, or would fire for every source, are refused at start.

Before: ``above: .nan`` / ``.inf`` and ``silent_for_s: .inf`` loaded and never fired; a
misspelt metric (``negativ_rate``) read as 0 on every window, so a ``below`` rule on it fired
for every source and an ``above`` rule never did, all without a word.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streamsense.schemas.analytics import Alert
from streamsense.services.analytics.exceptions import RulesError
from streamsense.services.analytics.rules import AlertEngine, Rule, load_rules
from streamsense.services.analytics.windows import SourceState


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ("{name: a, kind: text, metric: negative_rate, above: .nan}", "rules.0.above: .*finite"),
        ("{name: a, kind: text, metric: negative_rate, below: -.inf}", "rules.0.below: .*finite"),
        ("{name: a, kind: camera, silent_for_s: .inf}", "rules.0.silent_for_s: .*finite"),
        (
            "{name: a, kind: text, metric: negativ_rate, window: tumbling, below: 0.1}",
            "unknown text tumbling metric 'negativ_rate'; one of: .*negative_rate",
        ),
        ("{name: a, kind: text, metric: people, window: event, above: 1}", "unknown text event"),
        ("{name: a, kind: text, metric: count.x, window: event, above: 1}", "unknown text event"),
        ("{name: a, kind: camera, metric: negative_rate, above: 0.5}", "unknown camera hopping"),
        ("{name: a, kind: camera, metric: 'count.', above: 0.5}", "count.<label>"),
    ],
)
def test_rules_that_cannot_mean_anything_are_clear_errors(
    tmp_path: Path, rule: str, error: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(f"rules: [{rule}]")
    with pytest.raises(RulesError, match=error) as exc:
        load_rules(path)
    assert str(path) in str(exc.value)


def test_every_metric_a_window_or_event_reports_is_accepted() -> None:
    ok = [
        Rule(name="a", kind="camera", metric="people.present", window="tumbling", above=0.5),
        Rule(name="b", kind="camera", metric="count.car", window="hopping", above=3),
        Rule(name="c", kind="camera", metric="count.person", window="event", above=3),
        Rule(name="d", kind="camera", metric="person_area", window="event", above=0.3),
        Rule(name="e", kind="text", metric="count.negative", window="tumbling", above=3),
        Rule(name="f", kind="text", metric="sentiment", window="event", below=-0.5),
        Rule(name="g", kind="camera", metric="labels.over", window="tumbling", above=0),
        Rule(name="h", kind="camera", metric="people", window="event", above=1e300),
    ]
    assert [r.name for r in ok] == list("abcdefgh")


def test_a_threshold_at_the_extremes_still_judges_exactly() -> None:
    engine = AlertEngine(
        [Rule(name="x", kind="camera", metric="people", window="event", above=-1e308)]
    )
    row = SourceState.new(0)
    [alert] = engine.on_event("camera", "cam", row, {"people": 0.0}, 5)
    assert isinstance(alert, Alert) and alert.threshold == -1e308 and alert.value == 0.0
    assert engine.on_event("camera", "cam", row, {"people": 1.0}, 6) == []  # same breach


def test_the_cli_exits_non_zero_on_a_misspelt_metric(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streamsense.services.cli.app import app

    path = tmp_path / "rules.yaml"
    path.write_text("rules: [{name: a, kind: camera, metric: peopel, window: event, above: 3}]")
    res = CliRunner().invoke(app, ["analytics", "--rules", str(path)])
    assert res.exit_code == 2
    assert "unknown camera event metric 'peopel'" in res.output
