"""What a ``.keras`` archive may hold, read from its zip directory before Keras opens it.

A ``.keras`` file is a zip archive (``config.json``, ``metadata.json``, ``model.weights.h5``
and ``assets/``) that Keras reads into memory and partly extracts to disk. Keras's own guard
only refuses single members over 256 MiB-4 GiB that expand more than 100-fold, so a small
file can still make a loader allocate gigabytes or fill a disk with many members just under
that floor, and a truncated archive surfaces as a misleading "File not found".
:func:`check_keras_archive` refuses, before anything is decompressed: a file that is not a
complete zip archive, too many members, member names that are absolute or climb out of the
archive, links and special files, a member that expands far more than Keras's own (stored,
uncompressed) members ever do, an oversized ``config.json``, and a total past
:data:`MAX_TOTAL_BYTES`. Loading then runs with ``safe_mode=True`` (no Lambda or other
Python code, no ``TFSMLayer``).
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from streamsense.models.exceptions import ModelIntegrityError, UnsafeModelError

#: Members of one archive (a Keras model has a handful, plus one file per asset).
MAX_MEMBERS = 1000
#: Uncompressed bytes of all members together (the zoo's sentiment model: 16 MB).
MAX_TOTAL_BYTES = 2 << 30
#: Uncompressed size of ``config.json`` (the layer graph; a few KB to a few MB).
MAX_CONFIG_BYTES = 16 << 20
#: A member larger than this must not expand more than MAX_EXPANSION-fold (Keras stores
#: members uncompressed; deflate reaches ~1000-fold only on degenerate data).
RATIO_FLOOR_BYTES = 1 << 20
MAX_EXPANSION = 100
_REQUIRED = ("config.json",)
_WEIGHTS = ("model.weights.h5", "model.weights.npz")


def _refuse(path: Path, why: str) -> UnsafeModelError:
    return UnsafeModelError(f"{path}: refused .keras archive: {why}")


def _check_name(path: Path, name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise _refuse(path, f"member {name!r} lies outside the archive")


def check_keras_archive(path: Path) -> None:
    """Raise :class:`ModelIntegrityError` (not a readable archive) or
    :class:`UnsafeModelError` (a hostile one) unless ``path`` is safe to hand to Keras."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        msg = f"{path}: not a readable .keras archive (truncated or corrupt zip): {exc}"
        raise ModelIntegrityError(msg) from exc
    if len(members) > MAX_MEMBERS:
        raise _refuse(path, f"{len(members)} members, at most {MAX_MEMBERS}")
    names = set()
    total = 0
    for info in members:
        _check_name(path, info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: not recorded (Keras writes none)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _refuse(path, f"member {info.filename!r} is a link or special file")
        bomb = info.file_size > MAX_EXPANSION * max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and bomb:
            raise _refuse(
                path,
                f"member {info.filename!r} expands {info.compress_size} -> {info.file_size} "
                "bytes (a decompression bomb)",
            )
        if info.filename == "config.json" and info.file_size > MAX_CONFIG_BYTES:
            raise _refuse(path, f"config.json of {info.file_size} bytes > {MAX_CONFIG_BYTES}")
        total += info.file_size
        names.add(info.filename)
    if total > MAX_TOTAL_BYTES:
        raise _refuse(path, f"{total} uncompressed bytes, at most {MAX_TOTAL_BYTES}")
    missing = [n for n in _REQUIRED if n not in names]
    if missing or not names.intersection(_WEIGHTS):
        msg = f"{path}: not a Keras model archive (no {', '.join(missing) or 'weights file'})"
        raise ModelIntegrityError(msg)
