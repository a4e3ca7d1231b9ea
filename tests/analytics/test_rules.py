from __future__ import annotations

from pathlib import Path

import pytest

from streamsense.schemas.results import DetectionResult, SentimentResult
from streamsense.services.analytics import synthetic as syn
from streamsense.services.analytics.exceptions import RulesError
from streamsense.services.analytics.processor import Processor
from streamsense.services.analytics.rules import AlertEngine, Rule, load_rules
from streamsense.services.analytics.windows import SourceState, WindowSpec
from tests.analytics.helpers import DET, SEN, B, S, records

SPECS = [WindowSpec("tumbling", 10 * S, 10 * S)]


def test_event_rule_fires_once_per_breach_and_rearms() -> None:
    rule = Rule(name="crowd", kind="camera", metric="people", window="event", above=3)
    engine, row = AlertEngine([rule]), SourceState.new(0)
    fired = [len(engine.on_event("camera", "cam", row, {"people": p}, 0)) for p in (5, 6, 2, 4, 4)]
    assert fired == [1, 0, 0, 1, 0]
    assert row.firing == ["crowd"]


def test_window_rule_needs_min_count_and_fires_once_per_breach() -> None:
    rule = Rule(name="neg", kind="text", metric="negative_rate", window="tumbling", above=0.5,
                min_count=2)  # fmt: skip
    proc = Processor("text", {SEN: SentimentResult}, SPECS, 0, AlertEngine([rule]))
    plan = [  # (second, label): windows of 10 s
        (0, "negative"),
        (1, "negative"),
        (2, "positive"),  # 2/3 > 0.5: fire
        (10, "negative"),
        (11, "negative"),  # 2/2: still in breach, no second alert
        (20, "negative"),  # 1 message < min_count: not judged
        (30, "positive"),
        (31, "negative"),  # 1/2 = 0.5, not above: clears
        (40, "negative"),
        (41, "negative"),  # breach again: fire
        (50, "positive"),  # closes [40, 50)
    ]
    msgs = [syn.sentiment("chat", B + t * S, label) for t, label in plan]
    out = proc.process(records(SEN, msgs), {}, 0.0)
    assert [(a.rule, (a.ts_ns - B) // S, a.value) for a in out.alerts] == [
        ("neg", 10, pytest.approx(2 / 3)),
        ("neg", 50, 1.0),
    ]
    assert out.alerts[0].severity == "warning" and out.alerts[0].threshold == 0.5


def test_silence_rule_fires_once_and_rearms_on_the_next_result() -> None:
    rule = Rule(name="silent", kind="camera", silent_for_s=5)
    proc = Processor("camera", {DET: DetectionResult}, SPECS, 0, AlertEngine([rule]))
    table: dict = {}
    proc.process(records(DET, [syn.detection("cam", B, {})]), table, wall_s=100.0)
    assert proc.tick(table, 104.0, 1e9).alerts == []
    first = proc.tick(table, 105.5, 1e9).alerts
    assert [(a.rule, a.value) for a in first] == [("silent", 5.5)]
    assert proc.tick(table, 200.0, 1e9).alerts == []  # same breach
    proc.process(records(DET, [syn.detection("cam", B + S, {})], start=1), table, wall_s=300.0)
    assert table["cam"]["fire"] == []
    assert len(proc.tick(table, 306.0, 1e9).alerts) == 1


def test_rules_select_sources_by_pattern() -> None:
    rule = Rule(name="r", kind="camera", metric="people", window="event", above=0,
                sources=["door-*"])  # fmt: skip
    engine = AlertEngine([rule])
    assert engine.on_event("camera", "lobby", SourceState.new(0), {"people": 3}, 0) == []
    assert len(engine.on_event("camera", "door-1", SourceState.new(0), {"people": 3}, 0)) == 1


def test_the_example_rules_file_loads(repo_root: Path) -> None:
    rules = load_rules(repo_root / "deploy" / "alerts.example.yaml").rules
    assert {r.name for r in rules} >= {"negative-spike", "crowd", "camera-silent"}


DUP = "{name: a, kind: text, silent_for_s: 3}"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("rules: [{name: a, kind: camera}]", "either `metric`"),
        ("rules: [{name: a, kind: camera, metric: x, above: 1, below: 0}]", "exactly one"),
        ("rules: [{name: a, kind: text, silent_for_s: 3, metric: x}]", "takes no metric"),
        ("rules: [{name: a, kind: car, silent_for_s: 3}]", "rules.0.kind"),
        (f"rules: [{DUP}, {DUP}]", "unique"),
        ("rules: [{name: a, kind: text, silent_for_s: 3, message: '{nope}'}]", "template"),
        ("rules: [", "not valid YAML"),
    ],
)
def test_bad_rules_files_are_clear_errors(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError, match=error) as exc:
        load_rules(path)
    assert str(path) in str(exc.value)


def test_a_missing_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")


def test_the_cli_rejects_a_bad_rules_file_before_touching_kafka(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streamsense.services.cli.app import app

    path = tmp_path / "rules.yaml"
    path.write_text("rules: [{name: a, kind: camera, metric: people, above: 1, below: 2}]")
    res = CliRunner().invoke(app, ["analytics", "--rules", str(path)])
    assert res.exit_code == 2
    assert "exactly one of `above` and `below`" in res.output
