"""The text producer's book of followed files: where each resumes, and what its checkpoint says.

- ``resume``: a file found again after a restart continues at its checkpointed position when its
  fingerprint still matches (else from 0).
- ``adopt_rotated``: a checkpointed file the glob no longer matches, because it was rotated to
  a name outside the glob while the producer was stopped (or in its grace period), is looked for
  by its inode beside its old path and read to its end before it is forgotten, so no line
  written before the rotation is lost. One that is really gone is forgotten, and the log says
  which file it was (not its old name, which the new file may be using now).
- ``save``: the checkpoint holds only acknowledged positions; an orphan (rotated away and
  closed) is forgotten once its last record is acknowledged.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import BinaryIO

from streamsense.services.producers.checkpoint import (
    AckTracker,
    Checkpoint,
    CheckpointStore,
    FileCheckpoint,
    fingerprint,
)
from streamsense.services.producers.tail import Resume, TailedFile, Tailer, file_key, printable

log = logging.getLogger(__name__)


class FileBook:
    def __init__(self, store: CheckpointStore, ckpt: Checkpoint, tracker: AckTracker) -> None:
        self.store = store
        self.ckpt = ckpt
        self.tracker = tracker
        self.orphans: set[str] = set()
        self._last_save = 0.0

    def resume(self, key: str, path: str, fh: BinaryIO) -> Resume | None:
        entry = self.ckpt.files.get(key)
        if entry is None:
            return None
        size = os.fstat(fh.fileno()).st_size
        if size < entry.position:
            log.warning("%s is smaller than its checkpoint (%d < %d): truncated while stopped, "
                        "reading it from the start", path, size, entry.position)  # fmt: skip
            return None
        if entry.fp_len and fingerprint(fh.fileno(), entry.fp_len) != entry.fp:
            log.warning("%s has other content than checkpointed (inode reused): from the start",
                        path)  # fmt: skip
            return None
        if entry.path != printable(path) and not entry.fp_len:
            return None
        return Resume(entry.position, entry.lines, entry.source_id)

    def scanned(self, tailer: Tailer) -> None:
        """After a scan: new files join the tracker, rotated-away ones become orphans."""
        for key, f in tailer.files.items():
            if key not in self.tracker.files:
                self.tracker.start(key, f.position, f.lines, f.source_id, f.shown)
            if f.orphaned_at is not None:
                self.orphans.add(key)
            else:
                self.orphans.discard(key)

    def closed(self, f: TailedFile) -> None:
        c = self.tracker.files.get(f.key)
        if c is not None:
            c.path, c.fp, c.fp_len = f.shown, f.fp, f.fp_len
        if f.orphaned_at is not None:
            self.orphans.add(f.key)  # forgotten once its last line is acknowledged

    def adopt_rotated(self, tailer: Tailer) -> None:
        """Checkpointed files the glob no longer matches: finish the ones still beside their
        old path (rotated while stopped), forget the others."""
        for key in set(self.ckpt.files) - set(tailer.files):
            entry = self.ckpt.files[key]
            moved = _find_inode(Path(entry.path).parent, key)
            if moved is not None:
                log.info("%s (formerly %s) was rotated while stopped: reading it to its end",
                         moved, entry.path)  # fmt: skip
                tailer.adopt(moved, key)
                continue
            reused = any(f.shown == entry.path for f in tailer.files.values())
            what = f"the file formerly at {entry.path}" if reused else entry.path
            log.info("checkpoint: %s (inode %s) is gone, forgetting it", what, key)
            del self.ckpt.files[key]

    def save(self, tailer: Tailer, interval_s: float, force: bool = False) -> None:
        now = time.monotonic()
        if not self.tracker.changed or (not force and now - self._last_save < interval_s):
            return
        for key in list(self.orphans):
            if key not in tailer.files and not self.tracker.in_flight(key):
                self.tracker.forget(key)
                self.ckpt.files.pop(key, None)
                self.orphans.discard(key)
        for key, c in self.tracker.files.items():
            f = tailer.files.get(key)
            if f is not None:
                c.path, c.fp, c.fp_len = f.shown, f.fp, f.fp_len
            self.ckpt.files[key] = FileCheckpoint(
                c.path, c.source_id, c.position, c.lines, c.fp, c.fp_len
            )
            if c.max_seq >= 0:
                self.ckpt.sources[c.source_id] = max(self.ckpt.sources.get(c.source_id, 0),
                                                     c.max_seq + 1)  # fmt: skip
        self.store.save(self.ckpt)
        self.tracker.changed = False
        self._last_save = now


def _find_inode(directory: Path, key: str) -> str | None:
    """The path of the regular file ``key`` (``dev:ino``) directly in ``directory``, if any."""
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if file_key(st) == key:
                        return entry.path
    except OSError:
        return None
    return None
