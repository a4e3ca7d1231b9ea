"""Bytes -> lines -> ``TextEvent`` (or the reason it cannot be one).

:class:`LineSplitter` cuts a byte stream into lines, remembering where each starts and ends so
positions can be checkpointed. A line longer than ``max_bytes`` keeps its first ``max_bytes`` (cut
on a UTF-8 character boundary) and is flagged ``truncated``. When its newline is not in the bytes
fed so far it is emitted at once, so a giant line (a file with no newline at all) is served in
bounded time and memory; the rest of it is skipped up to its newline, never buffered, and
reported as a *tail* (no text, a new position). A resume position inside a line (the byte
before it is not a newline) means that line was emitted already: the splitter then starts by
skipping to the next newline, unless it follows a last line sent without its newline (at the end
of a file read without ``--follow``): then the rest of that line is the next line, flagged
``continued``. :func:`line_text` decodes (``errors="replace"``, flag
``invalid-utf8-replaced``) and applies ``--json-field``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from streamsense.services.producers.exceptions import MissingFieldError, NotJsonError

TRUNCATED = "truncated"
INVALID_UTF8 = "invalid-utf8-replaced"
#: the rest of a line whose beginning was sent before, without its newline (a file read to its
#: end while its writer was in the middle of the line): join it to that source's previous line
CONTINUED = "continued"


@dataclass(slots=True)
class RawLine:
    start: int
    """byte offset of the line in its file or stream"""
    end: int
    """byte offset just after the line (and its newline): where reading resumes"""
    data: bytes
    """the line without its line ending, at most ``max_bytes``"""
    length: int
    """the line's length in bytes (as far as read, for one emitted before its newline)"""
    tail: bool = False
    """the skipped rest of a line emitted truncated: no record, only the position moves"""
    continued: bool = False
    """the rest of a line whose beginning was emitted unterminated (flag ``continued``)"""

    @property
    def truncated(self) -> bool:
        return self.length > len(self.data)


class LineSplitter:
    """Feed bytes, get lines. ``offset`` counts every byte fed (the read position);
    ``line_start`` is where the unfinished line (or the tail being skipped) begins: the resume
    position. ``skipping``: inside the tail of a line already emitted."""

    def __init__(self, max_bytes: int, offset: int = 0, *, skipping: bool = False) -> None:
        self.max_bytes = max_bytes
        self.reset(offset, skipping=skipping)

    def reset(self, offset: int = 0, *, skipping: bool = False, continued: bool = False) -> None:
        """Start at ``offset``; ``skipping``: inside the tail of a line emitted truncated;
        ``continued``: inside a line emitted unterminated, whose rest is the next line."""
        self.offset = offset
        self.line_start = offset
        self.skipping = skipping
        self.continued = continued and not skipping
        self._buf = bytearray()
        self._length = 0

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line (no newline yet), or of the tail being skipped."""
        return self._length

    def feed(self, data: bytes) -> list[RawLine]:
        out: list[RawLine] = []
        pos, n = 0, len(data)
        while pos < n:
            nl = data.find(b"\n", pos)
            stop = n if nl < 0 else nl
            if self.skipping:
                self._length += stop - pos
                if nl >= 0:
                    out.append(self._end_tail(self.offset + nl + 1))
            else:
                self._add(data, pos, stop)
                if nl >= 0:
                    out.append(self._take(1))
                elif self._length > self.max_bytes:  # no newline yet: serve it now
                    out.append(self._take(0))
                    self.skipping = True
            if nl < 0:
                break
            pos = nl + 1
        self.offset += n
        return out

    def finish(self) -> RawLine | None:
        """At the end of a file without a final newline: its unfinished last line, or the
        rest of the tail being skipped (so the position moves to the end), if any."""
        if not self._length:
            return None
        return self._end_tail(self.offset) if self.skipping else self._take(0)

    def _add(self, data: bytes, pos: int, stop: int) -> None:
        room = self.max_bytes - len(self._buf)
        if room > 0:
            self._buf += data[pos : min(stop, pos + room)]
        self._length += stop - pos

    def _take(self, newline: int) -> RawLine:
        body, length = bytes(self._buf), self._length
        start, end = self.line_start, self.line_start + length + newline
        if length == len(body) and body.endswith(b"\r"):
            body, length = body[:-1], length - 1
        elif length > len(body):
            body = _cut_utf8(body)
        self.line_start = end
        self._buf.clear()
        self._length = 0
        continued, self.continued = self.continued, False
        return RawLine(start, end, body, length, continued=continued)

    def _end_tail(self, end: int) -> RawLine:
        tail = RawLine(self.line_start, end, b"", end - self.line_start, tail=True)
        self.line_start, self._length, self.skipping = end, 0, False
        return tail


def _cut_utf8(data: bytes) -> bytes:
    """Drop a UTF-8 sequence split by truncation (at most 3 continuation bytes back)."""
    end = len(data)
    for back in range(1, min(4, end) + 1):
        b = data[end - back]
        if b & 0xC0 != 0x80:  # not a continuation byte: the start of the last character
            need = 1 if b < 0x80 else 2 if b >> 5 == 0b110 else 3 if b >> 4 == 0b1110 else 4
            return data if need <= back else data[: end - back]
    return data


@dataclass(slots=True)
class LineText:
    text: str
    flags: list[str] = field(default_factory=list)


def line_text(line: RawLine, json_field: str | None = None) -> LineText:
    """The text and quality flags of a line; with ``json_field`` the line must be a JSON object
    holding that (dotted) string field, else :class:`NotJsonError`/:class:`MissingFieldError`."""
    flags: list[str] = [TRUNCATED] if line.truncated else []
    if line.continued:
        flags.append(CONTINUED)
    if json_field is None:
        try:
            text = line.data.decode("utf-8")
        except UnicodeDecodeError:
            text = line.data.decode("utf-8", errors="replace")
            flags.append(INVALID_UTF8)
        return LineText(text, flags)
    try:
        obj = orjson.loads(line.data)
    except orjson.JSONDecodeError as exc:
        cut = f" (line of {line.length} bytes truncated to {len(line.data)})" if flags else ""
        msg = f"not JSON{cut}: {exc}"
        raise NotJsonError(msg) from exc
    value: object = obj
    for part in json_field.split("."):
        if not isinstance(value, dict) or part not in value:
            msg = f"JSON line has no field {json_field!r}"
            raise MissingFieldError(msg)
        value = value[part]
    if not isinstance(value, str):
        msg = f"field {json_field!r} is a {type(value).__name__}, not a string"
        raise MissingFieldError(msg)
    return LineText(value, flags)
