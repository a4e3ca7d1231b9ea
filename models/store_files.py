"""How the model store touches the disk: never through a link, bounded reads, atomic writes.

Everything below the store root is written by :class:`streamsense.models.store.ModelStore`
itself, so these operations treat anything else they find as tampering or as debris of an
interrupted write: a symbolic link is refused (it could point anywhere), a card or pointer file
is read only up to :data:`MAX_META_BYTES`, a file is replaced with ``os.replace`` after an
fsync, a version directory is renamed into place whole, and what a killed writer left behind
(``.tmp-*``, ``.trash-*``) is removed once older than :data:`STALE_TMP_S`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from streamsense.models.exceptions import ModelError, ModelIntegrityError

log = logging.getLogger(__name__)

#: A put's temporary directory older than this was left by a killed writer (a put takes
#: seconds to minutes): the next put into the same model removes it.
STALE_TMP_S = 3600.0
#: Largest ``card.json`` or ``champion.json`` read (the store writes a few KB).
MAX_META_BYTES = 1 << 20


def no_link(path: Path) -> Path:
    """``path``, unless it is a symbolic link: everything below the store root is written by
    the store itself, so a link is tampering and could point anywhere (reads of other files,
    writes outside the store)."""
    if path.is_symlink():
        msg = (
            f"{path} is a symbolic link; the model store holds only what it wrote itself "
            "(remove the link and register or fetch the model again)"
        )
        raise ModelIntegrityError(msg)
    return path


def read_small(path: Path, what: str) -> bytes:
    """The bytes of a card or pointer file of at most MAX_META_BYTES."""
    no_link(path)
    with path.open("rb") as fh:
        data = fh.read(MAX_META_BYTES + 1)
    if len(data) > MAX_META_BYTES:
        msg = f"{path}: {what} larger than {MAX_META_BYTES} bytes; it is not one the store wrote"
        raise ModelIntegrityError(msg)
    return data


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a reader sees the old file or the new one, never a
    part."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_path(final: Path) -> Path:
    """A fresh name beside ``final`` to assemble it under; :func:`sweep_stale` removes one that
    a killed writer left."""
    return final.with_name(f".tmp-{final.name}-{uuid.uuid4().hex}")


def sweep_stale(model_dir: Path) -> None:
    """Remove what killed writers left (``.tmp-*`` and ``.trash-*`` older than an hour)."""
    cutoff = time.time() - STALE_TMP_S
    for left in [*model_dir.glob(".tmp-*"), *model_dir.glob(".trash-*")]:
        try:
            if left.is_dir() and left.stat().st_mtime < cutoff:
                shutil.rmtree(left, ignore_errors=True)
                log.warning("removed %s, left by an interrupted write", left)
        except FileNotFoundError:  # another writer swept it first
            continue


def swap_in(tmp: Path, final: Path, *, replace: bool) -> None:
    """Rename the assembled directory ``tmp`` to ``final``; with ``replace``, the old
    ``final`` is moved aside first and restored if the rename fails."""
    trash = None
    if replace and final.exists():
        trash = final.with_name(f".trash-{final.name}-{uuid.uuid4().hex}")
        final.rename(trash)
    try:
        tmp.rename(final)
    except OSError as exc:
        if trash is not None and not final.exists():
            trash.rename(final)
        msg = f"{final} appeared while it was being written (concurrent put?)"
        raise ModelError(msg) from exc
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
