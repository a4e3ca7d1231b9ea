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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.services.analytics.windows import Acc, Observation

SentimentScore = Literal["label", "probs"]
LABEL_SCORES = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}


@dataclass(frozen=True)
class CameraConfig:
    person_label: str = "person"
    min_score: float = 0.5
    person_area: float = 0.02


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
    out.update((k, v) for k, v in s.items() if k.startswith("count."))
    return out


def text_values(acc: Acc) -> dict[str, float]:
    s = acc["s"]
    n = s.get("messages", 0.0)
    out = {
        "messages": n,
        "mean_sentiment": s.get("sentiment.sum", 0.0) / n if n else 0.0,
        "negative_rate": s.get("negative", 0.0) / n if n else 0.0,
    }
    out.update((k, v) for k, v in s.items() if k.startswith("count."))
    return out


#: The value a window rule's ``min_count`` is compared with, per kind.
COUNT_FIELD = {"camera": "frames", "text": "messages"}
