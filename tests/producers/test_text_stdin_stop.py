"""A stop request (SIGTERM) while stdin is still open: every line read is acknowledged, and the
bytes of an unfinished last line, which cannot be read again, are reported, not dropped in
silence."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from streamsense.services.producers.text import TextProducer
from tests.producers.test_text import Following, events, text_settings

pytestmark = pytest.mark.integration


def test_a_stop_mid_line_says_how_much_of_it_was_not_sent(
    stack: dict[str, str],
    make_topic: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = make_topic("text")
    read_end, write_end = os.pipe()
    os.write(write_end, b"a\nb\npartial")
    caplog.set_level(logging.INFO, logger="streamsense")
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    with os.fdopen(read_end, "rb") as stdin:
        run = Following(TextProducer(s, stdin=stdin, source_id="chat"))
        try:
            run.acked(2)
        finally:
            run.stop()  # the writer keeps the pipe open: only the stop ends the run
            os.close(write_end)
    assert [e.text for e in events(stack["bootstrap"], topic, 2)] == ["a", "b"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("stopped with 7 byte(s) of an unfinished last line" in m for m in warnings), warnings
