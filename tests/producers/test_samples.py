"""Sample data: a video that reads back, a deterministic log with sentiment, labels."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import orjson
from typer.testing import CliRunner

from streamsense.schemas.text import LabeledText
from streamsense.services.cli.app import app
from streamsense.services.samples.logs import lines


def test_samples_make_writes_a_readable_video_a_log_and_labels(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["samples", "make", str(tmp_path), "--seconds", "2", "--lines", "120"]
    )
    assert res.exit_code == 0, res.output
    cap = cv2.VideoCapture(str(tmp_path / "sample.mp4"))
    assert cap.isOpened()
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1280, 720)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    assert len(frames) == 20
    assert float(abs(frames[0].astype(int) - frames[-1].astype(int)).mean()) > 10, "motion"
    log_lines = (tmp_path / "sample.log").read_text().splitlines()
    assert len(log_lines) == 120
    labels = [
        LabeledText.model_validate(orjson.loads(x))
        for x in (tmp_path / "labels.jsonl").read_bytes().splitlines()
    ]
    assert [x.text for x in labels] == log_lines


def test_the_log_is_deterministic_and_carries_all_three_sentiments() -> None:
    a, b = lines(300, seed=7), lines(300, seed=7)
    assert [x.line for x in a] == [x.line for x in b]
    assert [x.line for x in lines(300, seed=8)] != [x.line for x in a]
    counts = Counter(x.label for x in a)
    assert set(counts) == {"positive", "negative", "neutral"} and min(counts.values()) > 50
    assert a[0].line.startswith("2026-11-23T10:00:")
    happy = [x.line for x in a if x.label == "positive"]
    assert any("happy" in x or "love" in x or "great" in x for x in happy)
    ts = [x.ts for x in a]
    assert ts == sorted(ts)
