"""One kind of source (camera or text): decode, dedupe, window, judge rules — without Faust.

:meth:`Processor.process` takes a batch of raw input records and the table (any mutable
mapping of source id -> JSON row) and returns what to write and send: the touched rows, the
closed windows as :class:`WindowStat`, the alerts, and the records for the dead-letter topic.
The Faust app (``streamsense.services.analytics.app``) only moves these between Kafka, the table's
changelog and Redis, so the whole behaviour is testable with a dict.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from streamsense.schemas.analytics import Alert, WindowStat
from streamsense.schemas.base import Message
from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.registry import decode
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.services.analytics.observe import (
    COUNT_FIELD,
    LABELS_OVER,
    CameraConfig,
    SentimentScore,
    camera_observation,
    camera_values,
    cap_labels,
    check_result,
    event_time_ns,
    text_observation,
    text_values,
)
from streamsense.services.analytics.rules import AlertEngine
from streamsense.services.analytics.windows import (
    NS,
    ClosedWindow,
    Observation,
    SourceState,
    WindowSpec,
)

log = logging.getLogger(__name__)


Kind = Literal["camera", "text"]


@dataclass(frozen=True)
class InRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass
class Outcome:
    """What a batch (or a timer tick) produced."""

    rows: dict[str, SourceState] = field(default_factory=dict)
    windows: list[WindowStat] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    dead: list[tuple[InRecord, SchemaError]] = field(default_factory=list)
    applied: int = 0
    duplicates: dict[str, int] = field(default_factory=dict)
    late: int = 0
    consumed: dict[str, int] = field(default_factory=dict)
    #: detections/messages counted under ``labels.over`` (their source had too many labels)
    labels_over: int = 0
    #: results of new sources not analysed: this worker already holds ``max_sources`` rows
    sources_over: int = 0
    #: sources silent past the retention, their windows closed: their rows go
    forget: list[str] = field(default_factory=list)


#: How often the "too many sources" warning is repeated while it lasts (seconds).
SOURCES_OVER_LOG_S = 60.0


class Processor:
    def __init__(
        self,
        kind: Kind,
        inputs: dict[str, type[Message]],
        specs: Sequence[WindowSpec],
        grace_ns: int,
        engine: AlertEngine,
        camera: CameraConfig | None = None,
        score: SentimentScore = "label",
        max_future_ns: int | None = None,
        max_labels: int = 100,
        max_sources: int = 10_000,
    ) -> None:
        """``max_future_ns``: how far ahead of the wall clock (``wall_s`` of :meth:`process`)
        an event time may be; None: any (the app always sets it). ``max_labels``: distinct
        labels counted per source (:func:`~streamsense.services.analytics.observe.cap_labels`)."""
        self.kind = kind
        self.max_labels = max_labels
        #: rows (sources) this worker keeps per kind: a flood of new source ids cannot grow
        #: the table, its changelog and Redis without bound, nor push known sources out
        self.max_sources = max_sources
        self._sources_over_logged = -math.inf
        self.max_future_ns = max_future_ns
        self.inputs = inputs
        self.specs = list(specs)
        self.grace_ns = grace_ns
        self.engine = engine
        self.camera = camera or CameraConfig()
        self.score: SentimentScore = score
        self._values = camera_values if kind == "camera" else text_values
        self._count_field = COUNT_FIELD[kind]
        self._misplaced: set[str] = set()

    def values(self, row: SourceState) -> dict[str, float]:
        """The totals of a row, as the window values of this kind."""
        return self._values(row.totals)

    def process(
        self,
        records: Iterable[InRecord],
        table: MutableMapping[str, Any],
        wall_s: float,
    ) -> Outcome:
        out = Outcome()
        for rec in records:
            out.consumed[rec.topic] = out.consumed.get(rec.topic, 0) + 1
            try:
                result = self._decode(rec)
                ts = self._event_time(rec, result, wall_s)
            except SchemaError as exc:
                out.dead.append((rec, exc))
                continue
            source = result.source_id
            row = out.rows.get(source)
            if row is None:
                d = table.get(source)
                if d is None and len(table) >= self.max_sources:
                    out.sources_over += 1
                    self._say_sources_over(rec, source, wall_s)
                    continue
                row = SourceState.new(rec.partition) if d is None else SourceState(d)
            if row.is_duplicate(rec.topic, rec.offset):
                out.duplicates[rec.topic] = out.duplicates.get(rec.topic, 0) + 1
                continue
            if row.partition != rec.partition and source not in self._misplaced:
                self._misplaced.add(source)
                log.warning(
                    "%s: source %r was first seen on partition %d: the result topics are not "
                    "co-partitioned by source id (same partition count and partitioner needed)",
                    rec.where, source, row.partition,
                )  # fmt: skip
            obs = self._observe(result, row, rec)
            out.labels_over += int(obs.sums.get(LABELS_OVER, 0.0))
            closed, late = row.apply(
                rec.topic, rec.offset, ts, obs, self.specs, self.grace_ns, wall_s
            )
            table[source] = row.d
            out.rows[source] = row
            out.applied += 1
            out.late += late
            out.alerts.extend(self.engine.on_event(self.kind, source, row, obs.metrics, ts))
            self._emit(source, row, closed, out)
        return out

    def tick(
        self,
        table: MutableMapping[str, Any],
        now_s: float,
        idle_close_s: float,
        forget_after_s: float = 0.0,
    ) -> Outcome:
        """Wall-clock duties: silence rules, closing the windows of sources gone quiet, and
        (``forget_after_s`` > 0) forgetting sources silent that long once their windows are
        closed, so ids that come and go do not grow the table for ever."""
        out = Outcome()
        for source, d in list(table.items()):
            row = SourceState(d)
            silent_s = now_s - row.seen_s
            if forget_after_s and silent_s >= forget_after_s and not row.has_open_windows():
                out.forget.append(source)  # a silence alert it fired went out long ago
                continue
            changed = False
            if self.engine.has_silence_rules:
                before = list(row.firing)
                alerts = self.engine.on_tick(self.kind, source, row, now_s)
                out.alerts.extend(alerts)
                changed = row.firing != before
            if row.has_open_windows() and now_s - row.seen_s >= idle_close_s:
                self._emit(source, row, row.close_all(self.specs), out)
                changed = True
            if changed:
                out.rows[source] = row
        return out

    # -- internals -----------------------------------------------------------------------------

    def _decode(self, rec: InRecord) -> DetectionResult | SegmentResult | SentimentResult:
        expected = self.inputs.get(rec.topic)
        if expected is None:
            msg = f"no schema registered for topic {rec.topic}"
            raise SchemaError(msg)
        result = decode(rec.value, expected)
        assert isinstance(result, DetectionResult | SegmentResult | SentimentResult)
        check_result(result)
        return result

    def _event_time(
        self,
        rec: InRecord,
        result: DetectionResult | SegmentResult | SentimentResult,
        wall_s: float,
    ) -> int:
        """The event time, unless it is further ahead of the wall clock than allowed: one
        such event would move its source's stream time years ahead, close every window up to
        then, and make each later event of that source late (never windowed) until then."""
        ts = event_time_ns(result)
        ahead_ns = ts - int(wall_s * NS)
        if self.max_future_ns is not None and ahead_ns > self.max_future_ns:
            msg = (
                f"{rec.where}: event time {ts} ns is {ahead_ns / NS:.0f} s ahead of this clock;"
                f" at most {self.max_future_ns / NS:.0f} s is accepted"
                " (STREAMSENSE_ANALYTICS_MAX_FUTURE_S): check the producer's clock"
            )
            raise SchemaError(msg)
        return ts

    def _say_sources_over(self, rec: InRecord, source: str, wall_s: float) -> None:
        if wall_s - self._sources_over_logged >= SOURCES_OVER_LOG_S:
            self._sources_over_logged = wall_s
            log.warning(
                "%s: %d %s sources have rows here, the most kept"
                " (STREAMSENSE_ANALYTICS_MAX_SOURCES); results of new ones such as %r are"
                " counted (sources_over) and not analysed until silent sources leave"
                " (STREAMSENSE_ANALYTICS_SOURCE_TTL_S)",
                rec.where, self.max_sources, self.kind, source[:80],
            )  # fmt: skip

    def _observe(
        self,
        result: DetectionResult | SegmentResult | SentimentResult,
        row: SourceState,
        rec: InRecord,
    ) -> Observation:
        if isinstance(result, SentimentResult):
            obs = text_observation(result, self.score)
        else:
            obs = camera_observation(result, self.camera)
        known = row.totals["s"]
        capped = cap_labels(obs, known, self.max_labels)
        if capped is not obs and not known.get(LABELS_OVER):  # once per source, not per event
            log.warning(
                "%s: source %r has %d labels, the most counted per source"
                " (STREAMSENSE_ANALYTICS_MAX_LABELS); further labels are counted as %s",
                rec.where, result.source_id, self.max_labels, LABELS_OVER,
            )  # fmt: skip
        return capped

    def _emit(
        self, source: str, row: SourceState, closed: list[ClosedWindow], out: Outcome
    ) -> None:
        for win in closed:
            values = self._values(win.acc)
            out.windows.append(
                WindowStat(
                    source_id=source,
                    kind=self.kind,
                    window=win.window,
                    window_start_ns=win.start_ns,
                    window_end_ns=win.end_ns,
                    values=values,
                )
            )
            out.alerts.extend(
                self.engine.on_window(
                    self.kind,
                    source,
                    row,
                    win.window,
                    values,
                    values.get(self._count_field, 0.0),
                    win.end_ns,
                )  # fmt: skip
            )
