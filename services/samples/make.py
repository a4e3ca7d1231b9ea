"""``make_samples(DIR)``: sample.mp4, sample.log and labels.jsonl."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamsense.services.samples.logs import make_labels, make_log
from streamsense.services.samples.video import make_video


def make_samples(
    out: Path,
    *,
    seconds: float = 15.0,
    fps: int = 10,
    lines: int = 300,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    video = make_video(out / "sample.mp4", fps=fps, seconds=seconds, progress=progress)
    sample = make_log(out / "sample.log", lines, seed)
    make_labels(out / "labels.jsonl", sample)
    return {
        "sample.mp4": video,
        "sample.log": {"lines": len(sample), "labels": dict(Counter(s.label for s in sample))},
        "labels.jsonl": {"lines": len(sample)},
    }
