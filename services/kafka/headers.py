"""A record's headers, read so that a hostile one is a reason, never a crash.

Kafka's wire format lets a header key be any bytes, and any client can send one that is not
UTF-8. confluent-kafka decodes every key as UTF-8 when ``Message.headers()`` is called and, for
such a key, raises ``SystemError`` ("returned a result with an exception set") around the
``UnicodeDecodeError``, for all the record's headers at once. Uncaught, that crashed the loop
on a frame's headers. Worse, the message keeps the half-built list it failed on and returns it
from the next ``headers()`` call, and reading that list kills the process with a segmentation
fault (seen: a worker dead-lettering such a frame copies its headers). So after a failure the
message's headers are replaced by a marker that says why, and only these functions read them.

The call itself goes through ``operator.methodcaller``: CPython 3.11 specializes a hot
``msg.headers()`` call site so that a C method that returns a value *and* sets an exception is
not turned into ``SystemError``; the half-built list came back and the pending exception was
lost (seen in a sink thread, then a segmentation fault). A call made from C is always checked.
"""

from __future__ import annotations

import operator

from confluent_kafka import Message

from streamsense.services.kafka.exceptions import UnreadableHeadersError

Headers = list[tuple[str, bytes | str | None]]

#: ``msg.headers()``, called from C so that a failure is always raised (see the module doc).
_read_headers = operator.methodcaller("headers")

#: The key of the marker left in place of headers that failed: never a real key (librdkafka
#: hands keys over as C strings, which hold no NUL).
_FAILED = "\x00streamsense:unreadable-headers"


def headers_of(msg: Message) -> Headers:
    """The record's headers; :class:`UnreadableHeadersError` (a ``SchemaError``, so a dead
    letter's reason) when a key is not UTF-8, at this call and every later one."""
    try:
        raw = _read_headers(msg) or []
    except (SystemError, UnicodeDecodeError) as exc:
        cause = exc.__cause__ or exc.__context__ or exc
        reason = (f"its headers cannot be read: a header key is not UTF-8 ({cause}); send "
                  "header names as UTF-8 text")  # fmt: skip
        msg.set_headers([(_FAILED, reason.encode())])  # never the half-built list again
        raise UnreadableHeadersError(reason) from None
    pairs = list(raw.items()) if isinstance(raw, dict) else list(raw)
    if pairs and pairs[0][0] == _FAILED:
        said = pairs[0][1]
        raise UnreadableHeadersError(said.decode() if isinstance(said, bytes) else str(said))
    return pairs


def readable_headers(msg: Message) -> tuple[Headers, bool]:
    """The record's headers and True, or none and False when they cannot be read."""
    try:
        return headers_of(msg), True
    except UnreadableHeadersError:
        return [], False
