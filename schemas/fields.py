"""Bounded strings shared by the contracts: what a source id, a model name or a label may hold.

These values travel further than the message: into Redis key names, log lines, terminals and
the dashboard. Each type bounds the length and keeps out control characters, Unicode line and
direction controls (which reorder what a reader sees), and the characters that mean something
in HTML (``<``, ``>``, ``&``, quotes, backtick) or escape others (``\\``). Free text (a log line,
a review) stays free; it is only ever rendered as text.

The patterns use only escapes that Python's ``re``, pydantic's Rust engine and ECMA-262 (the
exported JSON Schema) read the same way.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

#: Model names and versions: the model store's directory names.
NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
#: Kafka's own topic-name characters.
TOPIC_PATTERN = r"^[A-Za-z0-9._-]+$"

_UNSAFE = (
    r"\x00-\x1f\x7f-\x9f"  # C0 and C1 controls (newlines, escapes, NUL)
    r"\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"  # zero-width, bidi, lines
    "<>&\"'`\\\\"  # markup; a backslash escapes others
)
#: Printable text without markup or control characters (ids, labels, trace ids).
SAFE_TEXT_PATTERN = rf"^[^{_UNSAFE}]+$"

MAX_ID_CHARS = 256
MAX_NAME_CHARS = 128
MAX_VERSION_CHARS = 64
MAX_LABEL_CHARS = 64
MAX_TRACE_CHARS = 64

SourceId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ID_CHARS,
        pattern=SAFE_TEXT_PATTERN,
        description="camera or text source; printable, no markup or control characters",
    ),
]
ModelName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=NAME_PATTERN)]
VersionTag = Annotated[str, Field(min_length=1, max_length=MAX_VERSION_CHARS, pattern=NAME_PATTERN)]
Label = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_LABEL_CHARS,
        pattern=SAFE_TEXT_PATTERN,
        description="a class name; printable, no markup or control characters",
    ),
]
TraceId = Annotated[str, Field(min_length=1, max_length=MAX_TRACE_CHARS, pattern=SAFE_TEXT_PATTERN)]
TopicName = Annotated[str, Field(min_length=1, max_length=249, pattern=TOPIC_PATTERN)]


_SAFE_TEXT = re.compile(SAFE_TEXT_PATTERN)
_UNSAFE_CHAR = re.compile(f"[{_UNSAFE}]")


def source_id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a source id, in words for a user; None when it can."""
    if not 1 <= len(value) <= MAX_ID_CHARS:
        return f"must have 1 to {MAX_ID_CHARS} characters"
    if not _SAFE_TEXT.match(value):
        return "must be printable text without control characters or any of < > & \" ' ` \\"
    return None


def source_id_from(name: str) -> str:
    """A valid source id made from a name that is not one (a file name): each character the
    contracts refuse becomes ``_``, and the result is cut to the longest id."""
    return (_UNSAFE_CHAR.sub("_", name) or "_")[:MAX_ID_CHARS]
