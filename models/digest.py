"""The sha256 of a model artifact: the digest a card records and every load checks.

An artifact is one file (``model.tflite``, ``model.keras``) or a directory
(``saved_model/``). A file's digest is the sha256 of its bytes; a directory's is taken over
its sorted relative paths, sizes and file bytes, so it does not depend on where the directory
lies. Symbolic links and special files are refused rather than followed: a linked file or
directory would be read by a loader yet could escape the digest.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from streamsense.models.exceptions import ModelIntegrityError

_CHUNK = 1 << 20


def artifact_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory: over sorted relative paths, sizes and bytes."""
    digest = hashlib.sha256()
    if path.is_symlink():
        msg = f"{path}: artifacts may not be symbolic links"
        raise ModelIntegrityError(msg)
    if path.is_file():
        _hash_file(path, digest)
        return digest.hexdigest()
    if not path.is_dir():
        msg = f"{path}: artifact is missing"
        raise ModelIntegrityError(msg)
    for file in sorted(_plain_files(path)):
        rel = file.relative_to(path).as_posix()
        digest.update(f"{rel}\0{file.stat().st_size}\0".encode())
        _hash_file(file, digest)
    return digest.hexdigest()


def _plain_files(directory: Path) -> list[Path]:
    """Every file under ``directory``; a symbolic link (to a file or a directory: a linked
    directory would be skipped by the digest yet read by the loader) or a special file is an
    error."""
    found = []
    for parent, dirs, files in os.walk(directory, followlinks=False):
        for entry in [*dirs, *files]:
            path = Path(parent, entry)
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                msg = f"{path}: artifacts may contain only plain files and directories"
                raise ModelIntegrityError(msg)
        found += [Path(parent, f) for f in files]
    return found


def _hash_file(path: Path, digest: Any) -> None:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
