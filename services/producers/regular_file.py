"""Reading a file the operator named, or one found in a watched folder, safely: only a regular
file, never blocking.

``open`` of a FIFO (or a terminal, a tape) put in a file's place blocks until a writer comes,
which froze a camera's reader at "online, 0 fps"; a device can have side effects on open. So
the file is opened with ``O_NONBLOCK`` (which changes nothing for a regular file), and anything
but a regular file is refused before a byte is read. Reads are bounded by the caller."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotRegularFileError(OSError):
    """The path names a FIFO, a device, a socket or a directory."""


def read_regular(path: Path, limit: int, *, follow_links: bool = True) -> bytes:
    """At most ``limit`` bytes of the regular file at ``path``. Raises OSError when it cannot
    be opened (``errno.ELOOP`` for a symbolic link when not ``follow_links``), and
    :class:`NotRegularFileError` for anything but a regular file."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            msg = f"{path} is not a regular file"
            raise NotRegularFileError(msg)
        return fh.read(limit)
