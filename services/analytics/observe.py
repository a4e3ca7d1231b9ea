"""What one result contributes to its source's windows, and what a window reports.

Camera windows (``WindowStat.values``):

- ``frames.detections`` / ``frames.segments``: results analysed by each model;
  ``frames``: the larger of the two (both workers read every frame, so either count is the
  number of frames analysed; the larger one survives stale-frame skipping in one worker);
- ``count.<label>``: detections with ``score >= min_score``, summed over the window's frames;
- ``people.max``: most people in one frame (person detections);
- ``people.frames``: frames with people present (a person detection, or a segment whose
  ``class_areas[person]`` exceeds ``person_area``), the larger of the two models' counts;
- ``people.present``: ``people.frames / frames``.

Text windows: ``messages``, ``mean_sentiment`` (positive +1, neutral 0, negative -1, or
``p(positive) - p(negative)`` with ``score="probs"``), ``negative_rate`` and ``count.<label>``.

Both kinds: ``labels.over``, the detections (messages) whose label got no count of its own
because their source already has ``STREAMSENSE_ANALYTICS_MAX_LABELS`` labels (see
:func:`cap_labels`); present only when some were.

Results are checked before they count (:func:`check_result`): the fractions summed or
compared here (``probs``, ``class_areas``) must lie in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.services.analytics.windows import Acc, Observation

SentimentScore = Literal["label", "probs"]
LABEL_SCORES = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}


@dataclass(frozen=True)
class CameraConfig:
    person_label: str = "person"
    min_score: float = 0.5
    person_area: float = 0.02


#: Sums/values key of the labels past the per-source limit; not a ``count.`` key, so it never
#: collides with a label's count.
LABELS_OVER = "labels.over"
_COUNT = "count."


#: Rounding a fraction may leave it this far outside [0, 1]: the tolerance the workers' check
#: of a model's probabilities allows (``models.sentiment.not_distributions``).
FRACTION_SLACK = 1e-3


def check_result(result: DetectionResult | SegmentResult | SentimentResult) -> None:
    """Refuse a result whose fractions are not in [0, 1] (the schema allows any float): one
    ``1e308`` summed twice is ``inf``, written as ``null`` to the window topics and to the
    table's changelog, from where every later event of the source would fail to add."""
    fractions: Mapping[str, float]
    if isinstance(result, SentimentResult):
        field, fractions = "probs", result.probs
    elif isinstance(result, SegmentResult):
        field, fractions = "class_areas", result.class_areas
    else:
        return  # detection scores are bounded by the schema
    for name, value in fractions.items():
        if not (math.isfinite(value) and -FRACTION_SLACK <= value <= 1.0 + FRACTION_SLACK):
            msg = f"{field}[{name!r}] is {value!r}: a fraction in [0, 1] is expected"
            raise SchemaError(msg)


def cap_labels(obs: Observation, known: Mapping[str, float], limit: int) -> Observation:
    """``obs`` with the ``count.<label>`` sums of labels new to a source left out once the
    source has ``limit`` labels (``known``: its running sums); what was left out is summed
    under :data:`LABELS_OVER`. Bounds a source's row (one changelog record, which must fit
    ``max.message.bytes``), its window outputs and its Redis hash, whatever labels arrive."""
    if all(k in known or not k.startswith(_COUNT) for k in obs.sums):
        return obs  # no new label: the usual event costs no count of the row's labels
    room = limit - sum(1 for k in known if k.startswith(_COUNT))
    sums: dict[str, float] = {}
    over = 0.0
    for key, value in obs.sums.items():
        if key.startswith(_COUNT) and key not in known:
            if room <= 0:
                over += value
                continue
            room -= 1
        sums[key] = value
    if not over:
        return obs
    sums[LABELS_OVER] = over
    metrics = {k: v for k, v in obs.metrics.items() if k in sums or not k.startswith(_COUNT)}
    return Observation(sums=sums, maxes=obs.maxes, metrics=metrics)


def event_time_ns(result: DetectionResult | SegmentResult | SentimentResult) -> int:
    """Event time: when the input was captured, else when its result was produced."""
    t = result.timings
    return t.capture_ns if t.capture_ns is not None else t.produced_ns


def camera_observation(result: DetectionResult | SegmentResult, cfg: CameraConfig) -> Observation:
    if isinstance(result, DetectionResult):
        counts: dict[str, float] = {}
        for det in result.detections:
            if det.score >= cfg.min_score:
                key = "count." + det.label
                counts[key] = counts.get(key, 0.0) + 1.0
        people = counts.get("count." + cfg.person_label, 0.0)
        return Observation(
            sums={"frames.detections": 1.0, "people.frames.detections": float(people > 0)} | counts,
            maxes={"people.max": people},
            metrics={"people": people} | counts,
        )
    area = float(result.class_areas.get(cfg.person_label, 0.0))
    present = area > cfg.person_area
    return Observation(
        sums={"frames.segments": 1.0, "people.frames.segments": float(present)},
        maxes={"people.max": 1.0} if present else {},
        metrics={"person_area": area},
    )


def sentiment_score(result: SentimentResult, mode: SentimentScore = "label") -> float:
    if mode == "probs":
        probs = {k.lower(): v for k, v in result.probs.items()}
        if "positive" in probs or "negative" in probs:
            return probs.get("positive", 0.0) - probs.get("negative", 0.0)
    return LABEL_SCORES.get(result.label.lower(), 0.0)


def text_observation(result: SentimentResult, mode: SentimentScore = "label") -> Observation:
    score = sentiment_score(result, mode)
    negative = float(result.label.lower() == "negative")
    return Observation(
        sums={
            "messages": 1.0,
            "sentiment.sum": score,
            "negative": negative,
            "count." + result.label: 1.0,
        },
        metrics={"sentiment": score, "negative": negative},
    )


def camera_values(acc: Acc) -> dict[str, float]:
    s, m = acc["s"], acc["m"]
    det = s.get("frames.detections", 0.0)
    seg = s.get("frames.segments", 0.0)
    frames = max(det, seg)
    people_frames = max(
        s.get("people.frames.detections", 0.0), s.get("people.frames.segments", 0.0)
    )
    out = {
        "frames": frames,
        "frames.detections": det,
        "frames.segments": seg,
        "people.max": m.get("people.max", 0.0),
        "people.frames": people_frames,
        "people.present": people_frames / frames if frames else 0.0,
    }
    out.update((k, v) for k, v in s.items() if k.startswith(_COUNT) or k == LABELS_OVER)
    return out


def text_values(acc: Acc) -> dict[str, float]:
    s = acc["s"]
    n = s.get("messages", 0.0)
    out = {
        "messages": n,
        "mean_sentiment": s.get("sentiment.sum", 0.0) / n if n else 0.0,
        "negative_rate": s.get("negative", 0.0) / n if n else 0.0,
    }
    out.update((k, v) for k, v in s.items() if k.startswith(_COUNT) or k == LABELS_OVER)
    return out


#: What a window reports besides ``count.<label>``, per kind (the names window rules may use).
WINDOW_VALUES = {
    "camera": frozenset(
        {
            "frames",
            "frames.detections",
            "frames.segments",
            "people.max",
            "people.frames",
            "people.present",
            LABELS_OVER,
        }
    ),  # fmt: skip
    "text": frozenset({"messages", "mean_sentiment", "negative_rate", LABELS_OVER}),
}
#: The per-event metrics event rules may use, per kind (camera also ``count.<label>``).
EVENT_METRICS = {
    "camera": frozenset({"people", "person_area"}),
    "text": frozenset({"sentiment", "negative"}),
}


def metric_problem(kind: str, window: str, metric: str) -> str | None:
    """Why ``metric`` is not something a ``window`` rule of ``kind`` can be judged on, or None.
    A misspelt metric would otherwise read as 0 on every window: a ``below`` rule on it fires
    for every source, an ``above`` rule never does."""
    if window == "event":
        known, counts = EVENT_METRICS[kind], kind == "camera"
    else:
        known, counts = WINDOW_VALUES[kind], True
    if metric in known or (counts and metric.startswith(_COUNT) and len(metric) > len(_COUNT)):
        return None
    names = sorted(known) + ([_COUNT + "<label>"] if counts else [])
    return f"unknown {kind} {window} metric {metric!r}; one of: {', '.join(names)}"


#: The value a window rule's ``min_count`` is compared with, per kind.
COUNT_FIELD = {"camera": "frames", "text": "messages"}
