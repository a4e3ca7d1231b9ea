"""Alert rules from YAML, and the engine that fires each rule once per breach.

A rule is in breach or not, per source. It fires when it goes into breach and re-arms when the
condition clears; while a breach lasts nothing more is sent. The firing state lives in the
source's table row (``SourceState.firing``), so it survives a restart with the counts.

Three shapes of rule (see ``deploy/alerts.example.yaml`` and docs/analytics.md):

- ``window: tumbling | hopping``: judged on every closed window of that kind, on one of the
  window's values (``negative_rate``, ``people.max``, ``count.car``, ...); windows with fewer
  than ``min_count`` frames/messages are not judged;
- ``window: event``: judged on every result, on a per-event metric (``people`` in this frame,
  ``count.<label>``, ``person_area``, ``sentiment``, ``negative``);
- ``silent_for_s``: judged by a wall-clock timer on the time since the source's last result;
  re-armed by the next result.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streamsense.schemas.analytics import Alert
from streamsense.services.analytics.exceptions import RulesError
from streamsense.services.analytics.observe import metric_problem
from streamsense.services.analytics.windows import NS, SourceState

Kind = Literal["camera", "text"]


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    kind: Kind
    metric: str | None = None
    window: Literal["tumbling", "hopping", "event"] = "hopping"
    above: float | None = Field(default=None, allow_inf_nan=False)
    below: float | None = Field(default=None, allow_inf_nan=False)
    min_count: int = Field(default=1, ge=1)
    silent_for_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    severity: Literal["info", "warning", "critical"] = "warning"
    sources: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    message: str | None = Field(
        default=None, description="format string: {source} {value} {threshold} {metric} {window}"
    )

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if self.silent_for_s is not None:
            if self.metric is not None or self.above is not None or self.below is not None:
                msg = "a silence rule (silent_for_s) takes no metric/above/below"
                raise ValueError(msg)
        else:
            if self.metric is None:
                msg = "a rule needs either `metric` with `above`/`below`, or `silent_for_s`"
                raise ValueError(msg)
            if (self.above is None) == (self.below is None):
                msg = "give exactly one of `above` and `below`"
                raise ValueError(msg)
            problem = metric_problem(self.kind, self.window, self.metric)
            if problem:
                raise ValueError(problem)
        if self.message is not None:
            try:
                self.message.format(source="s", value=1.0, threshold=1.0, metric="m", window="w")
            except (KeyError, IndexError, ValueError) as exc:
                msg = f"bad message template: {exc!r}"
                raise ValueError(msg) from exc
        return self

    @property
    def is_silence(self) -> bool:
        return self.silent_for_s is not None

    @property
    def threshold(self) -> float:
        if self.silent_for_s is not None:
            return self.silent_for_s
        if self.above is not None:
            return self.above
        assert self.below is not None  # the validator guarantees one of the two
        return self.below

    def applies_to(self, source_id: str) -> bool:
        return any(fnmatch.fnmatchcase(source_id, pat) for pat in self.sources)

    def breached(self, value: float) -> bool:
        if self.above is not None:
            return value > self.above
        return self.below is not None and value < self.below


class RuleSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            msg = f"rule names must be unique: {', '.join(dupes)}"
            raise ValueError(msg)
        return self


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file; any problem is a :class:`RulesError` naming the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read rules file {path}: {exc}"
        raise RulesError(msg) from exc
    except yaml.YAMLError as exc:
        msg = f"{path}: not valid YAML: {exc}"
        raise RulesError(msg) from exc
    try:
        return RuleSet.model_validate(raw or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = f"{path}: {loc}: {err['msg']}"
        raise RulesError(msg) from exc


class AlertEngine:
    """Decides which alerts to send; pure apart from mutating ``SourceState.firing``."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)

    def _rules(self, kind: str, source_id: str) -> list[Rule]:
        return [r for r in self.rules if r.kind == kind and r.applies_to(source_id)]

    def on_event(
        self, kind: str, source_id: str, state: SourceState, metrics: dict[str, float], ts_ns: int
    ) -> list[Alert]:
        """A result arrived: re-arm silence rules, judge the per-event rules."""
        out: list[Alert] = []
        for rule in self._rules(kind, source_id):
            if rule.is_silence:
                _clear(state, rule)
            elif rule.window == "event" and rule.metric is not None and rule.metric in metrics:
                value = metrics[rule.metric]
                if _step(state, rule, rule.breached(value)):
                    out.append(_alert(rule, source_id, value, ts_ns, "event"))
        return out

    def on_window(
        self,
        kind: str,
        source_id: str,
        state: SourceState,
        window: str,
        values: dict[str, float],
        count: float,
        end_ns: int,
    ) -> list[Alert]:
        """A window closed: judge the rules on that kind of window."""
        out: list[Alert] = []
        for rule in self._rules(kind, source_id):
            if rule.is_silence or rule.window != window or count < rule.min_count:
                continue
            value = values.get(rule.metric or "", 0.0)
            if _step(state, rule, rule.breached(value)):
                out.append(_alert(rule, source_id, value, end_ns, window))
        return out

    def on_tick(self, kind: str, source_id: str, state: SourceState, now_s: float) -> list[Alert]:
        """The timer: judge silence rules on the wall-clock time since the last result."""
        out: list[Alert] = []
        if state.seen_s <= 0:
            return out
        silent = now_s - state.seen_s
        for rule in self._rules(kind, source_id):
            if rule.silent_for_s is not None and silent >= rule.silent_for_s:
                if _step(state, rule, True):
                    out.append(_alert(rule, source_id, silent, int(now_s * NS), "silence"))
        return out

    @property
    def has_silence_rules(self) -> bool:
        return any(r.is_silence for r in self.rules)


def _step(state: SourceState, rule: Rule, breach: bool) -> bool:
    """Update the firing state; True when the rule has just gone into breach."""
    firing = state.firing
    if breach:
        if rule.name in firing:
            return False
        firing.append(rule.name)
        return True
    _clear(state, rule)
    return False


def _clear(state: SourceState, rule: Rule) -> None:
    if rule.name in state.firing:
        state.firing.remove(rule.name)


def _alert(rule: Rule, source_id: str, value: float, ts_ns: int, window: str) -> Alert:
    if rule.message is not None:
        text = rule.message.format(
            source=source_id, value=value, threshold=rule.threshold, metric=rule.metric,
            window=window,
        )  # fmt: skip
    elif rule.is_silence:
        text = f"{source_id} silent for {value:.1f} s (limit {rule.threshold:g} s)"
    else:
        op = ">" if rule.above is not None else "<"
        text = f"{rule.metric} {value:.4g} {op} {rule.threshold:g} on {source_id} ({window})"
    return Alert(
        rule=rule.name,
        source_id=source_id,
        severity=rule.severity,
        message=text,
        value=value,
        threshold=rule.threshold,
        ts_ns=ts_ns,
    )
