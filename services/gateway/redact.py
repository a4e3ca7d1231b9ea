"""Credentials never reach a log line: ``token=`` (and ``ticket=``) values in anything logged
are replaced before any handler sees the record.

Tokens are not accepted in URLs any more, but a client may still send one, and uvicorn logs
each WebSocket handshake (and, when enabled, each request) with its query string. Wrapping the
log record factory covers every logger and every handler of the process, including those
configured after the gateway starts. Records are made only for lines that will be emitted,
so formatting each one once more here is cheap next to writing it out.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_SECRET = re.compile(r"(?i)((?:^|[?&;\s\"'])(?:access_)?(?:token|ticket)=)[^&#\s\"']*")
_MARK = re.compile(r"(?i)(?:token|ticket)=")
REDACTED = "[redacted]"

_installed = False


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(1) + REDACTED, text)


def install() -> None:
    """Wrap the process's log record factory once (idempotent)."""
    global _installed  # noqa: PLW0603 - one hook per process
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format is for the handler to report, as ever
            return record
        if _MARK.search(message):
            record.msg, record.args = redact(message), None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
