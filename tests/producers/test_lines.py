"""Line splitting, positions, truncation and decoding: pure functions, no Kafka."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsense.services.producers.exceptions import MissingFieldError, NotJsonError
from streamsense.services.producers.lines import (
    INVALID_UTF8,
    TRUNCATED,
    LineSplitter,
    RawLine,
    line_text,
)


def split_all(data: bytes, max_bytes: int, chunks: list[int]) -> list[RawLine]:
    s = LineSplitter(max_bytes)
    out: list[RawLine] = []
    pos = 0
    for size in chunks:
        out += s.feed(data[pos : pos + size])
        pos += size
    out += s.feed(data[pos:])
    last = s.finish()
    return out + ([last] if last else [])


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=400).map(lambda b: b.replace(b"\r", b"")),
    max_bytes=st.integers(1, 40),
    chunks=st.lists(st.integers(0, 50), max_size=20),
)
def test_any_chunking_gives_the_same_lines_and_positions(
    data: bytes, max_bytes: int, chunks: list[int]
) -> None:
    """Whatever the chunking, the same lines with the same text and flags, and positions that
    cover the input without gap. An over-long line whose newline had not arrived yet is emitted
    at once (its length then counts the bytes read so far) and its rest comes as a tail, so
    only where the position steps and the length depend on the chunks."""
    out = split_all(data, max_bytes, chunks)
    lines = [ln for ln in out if not ln.tail]
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()  # a trailing newline ends the last line, it does not start one
    assert len(lines) == len(parts)
    pos, part_start = 0, 0
    for ln in out:
        assert ln.start == pos
        pos = ln.end
    assert pos == len(data)
    for ln, part in zip(lines, parts, strict=True):
        assert ln.start == part_start
        assert part.startswith(ln.data) and len(ln.data) <= max_bytes
        assert ln.truncated == (len(part) > max_bytes)
        assert ln.length == len(part) or max_bytes < ln.length <= len(part)
        part_start += len(part) + 1
    for tail in (ln for ln in out if ln.tail):
        assert tail.data == b""
        assert tail.end == len(data) or data[tail.end - 1 : tail.end] == b"\n"


def test_crlf_is_stripped_and_positions_count_it() -> None:
    s = LineSplitter(100)
    a, b = s.feed(b"one\r\ntwo\n")
    assert (a.data, a.start, a.end) == (b"one", 0, 5)
    assert (b.data, b.start, b.end) == (b"two", 5, 9)


def test_partial_line_waits_for_its_newline() -> None:
    s = LineSplitter(100)
    assert s.feed(b"hal") == []
    assert s.line_start == 0 and s.offset == 3 and s.pending == 3
    (line,) = s.feed(b"f\n")
    assert line.data == b"half" and line.end == 5 and s.line_start == 5


def test_truncation_never_splits_a_utf8_character() -> None:
    s = LineSplitter(5)
    (line,) = s.feed("abcdé€x\n".encode())  # é is 2 bytes at 4-5, cut at 5 would split it
    assert line.data == b"abcd"
    assert line.length == len("abcdé€x".encode())
    lt = line_text(line)
    assert lt.text == "abcd" and lt.flags == [TRUNCATED]


def test_over_long_line_is_emitted_at_once_and_its_tail_skipped_unbuffered() -> None:
    """A line over the limit is served when the limit is passed, not when (if ever) its newline
    comes; the rest is skipped without buffering, then reported as a tail up to its newline.
    (Before, the line waited for its newline: a 100 MB line without one stalled its file.)"""
    s = LineSplitter(64)
    (line,) = s.feed(b"x" * 10_000)
    assert (line.data, line.length, line.start, line.end) == (b"x" * 64, 10_000, 0, 10_000)
    assert line.truncated and s.skipping
    for _ in range(99):
        assert s.feed(b"x" * 10_000) == []
    assert len(s._buf) == 0 and s.pending == 990_000
    tail, nxt = s.feed(b"\nnext\n")
    assert tail.tail and (tail.start, tail.end) == (10_000, 1_000_001)
    assert (nxt.data, nxt.start, nxt.end, nxt.truncated) == (b"next", 1_000_001, 1_000_006, False)


def test_a_resume_inside_a_line_skips_its_tail() -> None:
    s = LineSplitter(64, offset=500, skipping=True)
    tail, line = s.feed(b"rest of an emitted line\nfresh\n")
    assert tail.tail and (tail.start, tail.end) == (500, 524)
    assert (line.data, line.start) == (b"fresh", 524)
    s = LineSplitter(64, offset=500, skipping=True)
    assert s.feed(b"no newline yet") == []
    last = s.finish()
    assert last is not None and last.tail and last.end == 514


def test_invalid_utf8_is_replaced_and_flagged() -> None:
    lt = line_text(RawLine(0, 7, b"ok \xff\xfe!", 6))
    assert lt.text == "ok \ufffd\ufffd!"
    assert lt.flags == [INVALID_UTF8]


def test_json_field_extracts_dotted_string_fields() -> None:
    raw = orjson.dumps({"log": {"msg": "payment failed"}, "level": 3})
    assert line_text(RawLine(0, 1, raw, len(raw)), "log.msg").text == "payment failed"
    with pytest.raises(MissingFieldError, match="no field 'log.text'"):
        line_text(RawLine(0, 1, raw, len(raw)), "log.text")
    with pytest.raises(MissingFieldError, match="is a int, not a string"):
        line_text(RawLine(0, 1, raw, len(raw)), "level")
    with pytest.raises(NotJsonError, match="not JSON"):
        line_text(RawLine(0, 1, b"plain text", 10), "msg")


def test_truncated_json_says_so_in_the_reason() -> None:
    with pytest.raises(NotJsonError, match="truncated to 5"):
        line_text(RawLine(0, 20, b'{"msg', 19), "msg")
