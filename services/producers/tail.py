"""Follow files like ``tail -F``: several at once, new ones picked up, rotation and truncation.

- The glob is re-evaluated on every scan, so files created later are followed too.
- A file is known by its identity (device + inode), not its name. When a followed path points to
  a new inode (rotation by rename or replace), the old file is read to its end and for
  ``grace_s`` more (a writer may not have reopened yet), then closed; the new one starts at 0.
- A file that shrinks below the read position was truncated (``copytruncate``): reading restarts
  at 0. (Like ``tail``, a truncation followed by growth past the old position before the next
  check cannot be seen.)
- A matched file that cannot be opened (permissions) or read (an I/O error) is never skipped
  in silence: it is in :attr:`Tailer.unreadable` with the reason, logged once (not at every
  scan), and followed as soon as it can be opened; one that failed while being read is closed
  and not reopened (its checkpoint holds what was acknowledged). Without ``--follow`` the run
  then ends with an error naming it (:mod:`~streamsense.services.producers.text`).
- ``watchfiles`` wakes the loop on changes; a short poll interval is the fallback.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import watchfiles

from streamsense.schemas.fields import source_id_from
from streamsense.services.producers.checkpoint import FINGERPRINT_BYTES, fingerprint
from streamsense.services.producers.lines import LineSplitter, RawLine

log = logging.getLogger(__name__)

CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Resume:
    """Where to start a file found again after a restart (from the checkpoint)."""

    position: int
    lines: int
    source_id: str


#: (key "dev:ino", path, open file) -> where to resume, or None to start at 0
ResumeFn = Callable[[str, str, BinaryIO], Resume | None]


@dataclass(eq=False)
class TailedFile:
    key: str
    path: str
    source_id: str
    fh: BinaryIO
    splitter: LineSplitter
    lines: int = 0
    """lines taken from this file so far (numbers the records, across truncations)"""
    orphaned_at: float | None = None
    eof: bool = False
    truncations: int = 0
    fp: str = ""
    """SHA-256 of the first ``fp_len`` bytes: recognises the file on resume"""
    fp_len: int = 0

    @property
    def shown(self) -> str:
        """The path as text (:func:`printable`); ``path`` stays the name to open."""
        return printable(self.path)

    @property
    def position(self) -> int:
        """Where the first unfinished line starts: a restart resumes here."""
        return self.splitter.line_start

    def update_fingerprint(self) -> None:
        want = min(FINGERPRINT_BYTES, self.splitter.offset)
        if want > self.fp_len:
            self.fp, self.fp_len = fingerprint(self.fh.fileno(), want), want


def printable(path: str) -> str:
    """``path`` as text for records, checkpoints, health and messages: a file name that is not
    UTF-8 (``bad\\xff.log``, kept by Python as a lone surrogate) gets U+FFFD instead. Before, such
    a name in the glob stopped the whole producer on the event's validation (a traceback)."""
    return os.fsencode(path).decode("utf-8", errors="replace")


def file_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def matching_files(pattern: str) -> list[str]:
    """Regular files matching ``pattern`` (``**`` recurses), sorted."""
    pattern = str(Path(pattern).expanduser())
    return sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))


def not_regular(pattern: str) -> str:
    """Why ``pattern`` matches no regular file although it matches something (a directory, a
    FIFO, a device), to append to "no file matches", or "" when nothing is there."""
    found = sorted(glob.glob(str(Path(pattern).expanduser()), recursive=True))
    odd = [p for p in found if not os.path.isfile(p)]
    if not odd:
        return ""
    more = f" (and {len(odd) - 1} more)" if len(odd) > 1 else ""
    if os.path.isdir(odd[0]):
        return f": {printable(odd[0])}{more} is a directory; match the files in it (dir/*.log)"
    return (
        f": {printable(odd[0])}{more} is a FIFO, a device or a socket, not a regular file; "
        "pipe it in instead: cat FIFO | streamsense produce text --stdin"
    )


def watch_root(pattern: str) -> Path:
    """The deepest directory of ``pattern`` without glob characters."""
    parts = Path(pattern).expanduser().absolute().parts
    root = Path(parts[0])
    for part in parts[1:]:
        if set(part) & set("*?["):
            break
        root /= part
    return root if root.is_dir() else root.parent


class Tailer:
    def __init__(
        self,
        pattern: str,
        *,
        max_line_bytes: int,
        follow: bool,
        grace_s: float = 2.0,
        source_id: str | None = None,
        resume: ResumeFn | None = None,
        on_close: Callable[[TailedFile], None] | None = None,
    ) -> None:
        self.pattern = str(Path(pattern).expanduser())
        self.max_line_bytes = max_line_bytes
        self.follow = follow
        self.grace_s = grace_s
        self.source_id = source_id
        self._resume = resume
        self._on_close = on_close
        self.files: dict[str, TailedFile] = {}
        #: matched files that cannot be opened or read now: path -> reason
        self.unreadable: dict[str, str] = {}
        #: files (by key) closed on a read error: not reopened while they exist
        self._failed: set[str] = set()
        self.rotations = 0
        self.truncations = 0
        #: files the glob matched at the last scan
        self.matched = 0

    # -- discovery ----------------------------------------------------------------------------

    def matches(self) -> list[str]:
        return matching_files(self.pattern)

    def scan(self) -> None:
        """Re-evaluate the glob: new files, renamed files, rotated and deleted ones."""
        seen: set[str] = set()
        paths = self.matches()
        self.matched = len(paths)
        for path in paths:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            key = file_key(st)
            seen.add(key)
            if key in self._failed:
                continue
            known = self.files.get(key)
            if known is not None:
                if known.path != path:
                    log.info("%s was renamed to %s: still following it", known.path, path)
                    known.path = path
                known.orphaned_at = None
                continue
            for other in self.files.values():
                if other.path == path and other.orphaned_at is None:
                    log.info("%s was rotated: finishing the old file, then the new one", path)
                    other.orphaned_at = time.monotonic()
                    self.rotations += 1
            self._open(path, key)
        for gone in set(self.unreadable) - {printable(p) for p in paths}:
            del self.unreadable[gone]  # removed or renamed away: nothing left to read there
        self._failed &= seen
        now = time.monotonic()
        for f in self.files.values():
            if f.key not in seen and f.orphaned_at is None:
                log.info("%s is gone from %s: finishing it", f.path, self.pattern)
                f.orphaned_at = now

    def adopt(self, path: str, key: str) -> None:
        """Follow ``path``, which the glob does not match (a file rotated away while we were
        stopped), only to finish it: read to its end, then closed like any rotated file."""
        self._open(path, key)
        f = self.files.get(key)
        if f is not None:
            f.orphaned_at = time.monotonic()

    def _open(self, path: str, key: str) -> None:
        try:
            fh = open(path, "rb", buffering=0)  # kept open while followed
        except OSError as exc:
            reason, shown = f"cannot open it: {exc.strerror or exc}", printable(path)
            if self.unreadable.get(shown) != reason:  # once, not at every scan
                log.error("%s: %s; its lines are not sent until it can be read", shown, reason)
            self.unreadable[shown] = reason
            return
        if self.unreadable.pop(printable(path), None) is not None:
            log.info("%s can be read now", printable(path))
        if file_key(os.fstat(fh.fileno())) != key:  # replaced between stat and open
            fh.close()
            return
        # a file name may hold characters the contracts refuse in an id: they become "_"
        source_id = self.source_id or source_id_from(Path(printable(path)).name)
        start = self._resume(key, path, fh) if self._resume else None
        splitter = LineSplitter(self.max_line_bytes)
        f = TailedFile(key, path, source_id, fh, splitter)
        if start is not None:
            fh.seek(start.position)
            inside = start.position > 0 and os.pread(fh.fileno(), 1, start.position - 1) != b"\n"
            # resuming inside a line: it was emitted truncated (skip its tail), or, if no longer
            # than a line may be, emitted unterminated at the end of the file: its rest is a line
            cut = inside and self._unterminated(fh, start.position)
            splitter.reset(start.position, skipping=inside and not cut, continued=cut)
            f.lines, f.source_id = start.lines, start.source_id
            f.update_fingerprint()
            log.info("resuming %s at byte %d (line %d)", path, start.position, start.lines)
        else:
            log.info("following %s from the start", path)
        self.files[key] = f

    def _unterminated(self, fh: BinaryIO, position: int) -> bool:
        """Whether the line ending at ``position`` (no newline) is at most ``max_line_bytes``
        long: then it was sent whole, as the last line of a file read to its end (a longer one
        was sent truncated, and its rest is skipped). Before, its rest was skipped too: lost."""
        n = min(position, self.max_line_bytes + 1)
        back = os.pread(fh.fileno(), n, position - n)
        return len(back) - (back.rfind(b"\n") + 1) <= self.max_line_bytes

    # -- reading ------------------------------------------------------------------------------

    def read(self, budget: int = 4 * CHUNK) -> list[tuple[TailedFile, RawLine]]:
        """Lines available now, reading at most ``budget`` bytes per file: one file's giant
        line (or burst) delays the others by one such round, not by its whole size. A file
        left with more to read is not ``eof``, so the caller reads again without waiting."""
        out: list[tuple[TailedFile, RawLine]] = []
        for f in list(self.files.values()):
            try:
                self._read_file(f, budget, out)
            except OSError as exc:  # EIO, ESTALE on NFS, a device gone: this file only
                reason = f"read failed at byte {f.splitter.offset}: {exc.strerror or exc}"
                log.error("%s: %s; closing it: lines after byte %d are not sent", f.path, reason,
                          f.position)  # fmt: skip
                self.unreadable[f.shown] = reason
                self._failed.add(f.key)
                self._close(f)
                continue
            if f.eof and self._finished(f):
                last = f.splitter.finish()
                if last is not None:
                    out.append((f, last))
                self._close(f)
        return out

    def _read_file(self, f: TailedFile, budget: int, out: list[tuple[TailedFile, RawLine]]) -> None:
        self._check_truncation(f)
        got = 0
        while got < budget:
            data = f.fh.read(min(CHUNK, budget - got))
            if not data:
                f.eof = True
                break
            f.eof = False
            got += len(data)
            out.extend((f, line) for line in f.splitter.feed(data))
        if got:
            f.update_fingerprint()

    def _check_truncation(self, f: TailedFile) -> None:
        fd = f.fh.fileno()
        size = os.fstat(fd).st_size
        if size == 0 and f.splitter.offset and os.pread(fd, 1, 0) and not os.fstat(fd).st_size:
            # A /proc or /sys file: its size always reads 0, so it would look truncated at
            # every read and be sent again and again, without end.
            msg = (
                "its size reads 0 although it holds data (a /proc or /sys file): it cannot be "
                "followed; pipe it in instead: cat FILE | streamsense produce text --stdin"
            )
            raise OSError(msg)
        if size < f.splitter.offset:
            log.warning("%s was truncated (%d < %d bytes read): reading it again from the start",
                        f.path, size, f.splitter.offset)  # fmt: skip
            f.fh.seek(0)
            f.splitter.reset(0)
            f.fp, f.fp_len = "", 0
            f.truncations += 1
            self.truncations += 1

    def _finished(self, f: TailedFile) -> bool:
        if not self.follow:
            return True
        return f.orphaned_at is not None and time.monotonic() - f.orphaned_at >= self.grace_s

    def _close(self, f: TailedFile) -> None:
        f.fh.close()
        del self.files[f.key]
        log.info("closed %s at byte %d", f.path, f.splitter.offset)
        if self._on_close is not None:
            self._on_close(f)

    def unreadable_summary(self, sent: bool) -> str:
        """One line for the run's error: which files could not be read, and why."""
        bad = self.unreadable
        listed = "; ".join(f"{path}: {why}" for path, why in sorted(bad.items())[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        rest = "no line was sent" if not sent else (
            "the other files' lines were sent; run again once these can be read: they are "
            "read from where they stopped"
        )  # fmt: skip
        what = f"{len(bad)} file(s) matching {printable(self.pattern)} could not be read"
        return f"{what}: {listed}{more}; {rest}"

    @property
    def idle(self) -> bool:
        """Every followed file is at its end."""
        return all(f.eof for f in self.files.values())

    def close(self) -> None:
        for f in list(self.files.values()):
            f.fh.close()
        self.files.clear()
        self._resume = self._on_close = None  # no reference cycle with the owner


class ChangeWatcher:
    """Sets ``changed`` whenever something under the pattern's root directory changes."""

    def __init__(self, pattern: str, changed: threading.Event) -> None:
        self.root = watch_root(pattern)
        rest = Path(pattern).expanduser().absolute().relative_to(self.root).parts
        self.recursive = len(rest) > 1
        self.changed = changed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ChangeWatcher:
        if not self.root.is_dir():
            log.warning("%s does not exist: polling for files instead of watching", self.root)
            return self
        self._thread = threading.Thread(target=self._run, name="tail-watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for _changes in watchfiles.watch(self.root, stop_event=self._stop, debounce=50,
                                             step=20, recursive=self.recursive,
                                             ignore_permission_denied=True):  # fmt: skip
                self.changed.set()
        except Exception:  # the poll fallback keeps working without notifications
            log.exception("file watcher on %s stopped; polling only", self.root)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
