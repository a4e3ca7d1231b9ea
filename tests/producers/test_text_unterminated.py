"""A file read to its end (no ``--follow``) while its writer is in the middle of a line: the
line's beginning is sent, and its rest, at the next run, is the next record, flagged
``continued``. Before, the next run took the position for the inside of a truncated line and
skipped the rest up to the newline: lost, exit 0. A truncated line's rest is still skipped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamsense.services.producers.lines import CONTINUED, TRUNCATED, LineSplitter, line_text
from streamsense.services.producers.tail import Resume, Tailer
from streamsense.services.producers.text import TextProducer
from tests.producers.conftest import topic_size
from tests.producers.test_text import events, text_settings


def _resume_at(position: int, lines: int) -> Callable[..., Resume]:
    return lambda _key, path, _fh: Resume(position, lines, Path(path).name)


def _lines(tailer: Tailer) -> list[tuple[bytes, list[str], bool]]:
    tailer.scan()
    out = [
        (raw.data, [] if raw.tail else line_text(raw).flags, raw.tail) for _f, raw in tailer.read()
    ]
    tailer.close()
    return out


def test_the_rest_of_a_line_sent_unterminated_is_the_next_line(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\ntw")
    assert _lines(Tailer(str(log), max_line_bytes=16, follow=False)) == [
        (b"one", [], False), (b"tw", [], False),
    ]  # fmt: skip
    with log.open("ab") as fh:
        fh.write(b"o-continued\nthree\n")
    resumed = Tailer(str(log), max_line_bytes=16, follow=False, resume=_resume_at(6, 2))
    assert _lines(resumed) == [(b"o-continued", [CONTINUED], False), (b"three", [], False)]


def test_the_rest_of_a_truncated_line_is_still_skipped(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\n" + b"x" * 40)  # a 40-byte line, 16 allowed: sent truncated
    first = _lines(Tailer(str(log), max_line_bytes=16, follow=False))
    assert first[1] == (b"x" * 16, [TRUNCATED], False)
    with log.open("ab") as fh:
        fh.write(b"yyy\nafter\n")
    resumed = Tailer(str(log), max_line_bytes=16, follow=False, resume=_resume_at(44, 2))
    assert _lines(resumed) == [(b"", [], True), (b"after", [], False)]


def test_the_splitter_flags_only_the_first_line_after_a_continued_resume() -> None:
    s = LineSplitter(16)
    s.reset(6, continued=True)
    got = s.feed(b"o-continued\nthree\n")
    assert [(r.start, r.data, r.continued) for r in got] == [
        (6, b"o-continued", True), (18, b"three", False),
    ]  # fmt: skip


@pytest.mark.integration
def test_two_runs_over_a_growing_file_send_every_byte_once(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    log = tmp_path / "app.log"
    log.write_bytes(b"one\ntw")
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    TextProducer(s, pattern=str(log)).run()
    with log.open("ab") as fh:
        fh.write(b"o-continued\nthree\n")
    TextProducer(s, pattern=str(log)).run()
    got = events(stack["bootstrap"], topic, 4)
    assert [(e.text, e.flags, e.position) for e in got] == [
        ("one", [], 0), ("tw", [], 4), ("o-continued", [CONTINUED], 6), ("three", [], 18),
    ]  # fmt: skip
    assert topic_size(stack["bootstrap"], topic) == 4
