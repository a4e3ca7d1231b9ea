"""The model store: versioned artifacts with cards and a champion pointer per model name.

Layout::

    <root>/<name>/<version>/<artifact>      model.tflite | saved_model/ | model.keras
    <root>/<name>/<version>/card.json       streamsense.models.card.ModelCard
    <root>/<name>/champion.json             {"version": ..., "updated": ...}

Versions are immutable and appear atomically: a version is assembled in a temporary
directory beside its final place and renamed into it; the champion pointer is replaced with
``os.replace``. Readers therefore never see a half-written version. Every load verifies the
artifact's sha256 against its card (for a directory, a digest over its sorted relative paths
and file bytes), so a corrupt or tampered artifact raises :class:`ModelIntegrityError` and is
never served.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from streamsense.models.card import ModelCard
from streamsense.models.exceptions import (
    ModelError,
    ModelIntegrityError,
    ModelNotFoundError,
    UnsafeModelError,
)
from streamsense.schemas.fields import NAME_PATTERN

if TYPE_CHECKING:
    from streamsense.models.base import ModelAdapter

log = logging.getLogger(__name__)

CARD_FILE = "card.json"
CHAMPION_FILE = "champion.json"
_NAME_RE = re.compile(NAME_PATTERN)
_CHUNK = 1 << 20
#: A put's temporary directory older than this was left by a killed writer (a put takes
#: seconds to minutes): the next put into the same model removes it.
STALE_TMP_S = 3600.0
#: What makes a stored version unservable, so that a worker falls back to an older one.
_UNSERVABLE = (ModelIntegrityError, ModelNotFoundError, UnsafeModelError)


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
    for file in sorted(p for p in path.rglob("*") if not p.is_dir()):
        if file.is_symlink() or not file.is_file():
            msg = f"{file}: artifacts may contain only plain files"
            raise ModelIntegrityError(msg)
        rel = file.relative_to(path).as_posix()
        digest.update(f"{rel}\0{file.stat().st_size}\0".encode())
        _hash_file(file, digest)
    return digest.hexdigest()


def _hash_file(path: Path, digest: Any) -> None:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)


def _natural_key(version: str) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", version) if p]


def _check_name(kind: str, value: str) -> None:
    if not _NAME_RE.match(value) or value.startswith("."):
        msg = f"invalid model {kind} {value!r}: use letters, digits, '_', '.', '-'"
        raise ModelError(msg)


def _write_atomic(path: Path, text: str) -> None:
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


def _sweep_stale(model_dir: Path) -> None:
    """Remove what killed writers left (``.tmp-*`` and ``.trash-*`` older than an hour)."""
    cutoff = time.time() - STALE_TMP_S
    for left in [*model_dir.glob(".tmp-*"), *model_dir.glob(".trash-*")]:
        try:
            if left.is_dir() and left.stat().st_mtime < cutoff:
                shutil.rmtree(left, ignore_errors=True)
                log.warning("removed %s, left by an interrupted write", left)
        except FileNotFoundError:  # another writer swept it first
            continue


class ModelStore:
    """Versioned model artifacts under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"

    # -- reading -------------------------------------------------------------------------
    def list(self) -> list[str]:
        """Names of the models that have at least one version."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if self._has_versions(p))

    def _has_versions(self, path: Path) -> bool:
        return path.is_dir() and not path.name.startswith(".") and bool(self._versions(path))

    def versions(self, name: str) -> builtins.list[str]:
        """Versions of ``name``, oldest first (numeric parts compare as numbers)."""
        _check_name("name", name)
        return self._versions(self.root / name)

    def next_version(self, name: str) -> str:
        """One more than the largest integer version of ``name`` (``"1"`` for none)."""
        numbers = [int(v) for v in self.versions(name) if re.fullmatch(r"[0-9]+", v)]
        return str(max(numbers, default=0) + 1)

    @staticmethod
    def _versions(model_dir: Path) -> builtins.list[str]:
        if not model_dir.is_dir():
            return []
        found = [
            p.name
            for p in model_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / CARD_FILE).is_file()
        ]
        return sorted(found, key=_natural_key)

    def version_dir(self, name: str, version: str) -> Path:
        _check_name("name", name)
        _check_name("version", version)
        path = self.root / name / version
        if not (path / CARD_FILE).is_file():
            msg = f"model {name!r} has no version {version!r} in {self.root}"
            raise ModelNotFoundError(msg)
        return path

    def card(self, name: str, version: str) -> ModelCard:
        path = self.version_dir(name, version) / CARD_FILE
        try:
            card = ModelCard.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            msg = f"{path}: unreadable model card: {exc}"
            raise ModelIntegrityError(msg) from exc
        if card.name != name or card.version != version:
            msg = f"{path}: card names {card.name}/{card.version}, expected {name}/{version}"
            raise ModelIntegrityError(msg)
        return card

    def artifact_path(self, name: str, version: str) -> Path:
        return self.version_dir(name, version) / self.card(name, version).artifact

    def champion(self, name: str) -> str | None:
        """The version currently serving for ``name``, or None when none was chosen."""
        _check_name("name", name)
        path = self.root / name / CHAMPION_FILE
        if not path.is_file():
            return None
        try:
            version = json.loads(path.read_text(encoding="utf-8"))["version"]
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{path}: unreadable champion pointer"
            raise ModelIntegrityError(msg) from exc
        return str(version)

    def verify(self, name: str, version: str) -> ModelCard:
        """The card of a version whose artifact matches its sha256; raises otherwise."""
        card = self.card(name, version)
        actual = artifact_sha256(self.version_dir(name, version) / card.artifact)
        if actual != card.sha256:
            msg = (
                f"{name}/{version}: artifact sha256 {actual} does not match its card "
                f"({card.sha256}); the artifact is corrupt or was modified"
            )
            raise ModelIntegrityError(msg)
        return card

    def load(self, name: str, version: str | None = None) -> ModelAdapter[Any, Any]:
        """A loaded adapter for ``name`` at ``version`` (default: the champion)."""
        from streamsense.models.registry import create_adapter

        if version is None:
            version = self.champion(name)
            if version is None:
                raise ModelNotFoundError(self._no_champion(name))
        card = self.verify(name, version)
        adapter = create_adapter(card, self.version_dir(name, version) / card.artifact)
        adapter.load()
        return adapter

    def _no_champion(self, name: str) -> str:
        versions = self.versions(name)
        if not versions:
            return (
                f"no model named {name!r} in {self.root}: `streamsense models list` shows what "
                "is there, `streamsense models fetch` builds the default zoo, `streamsense "
                "models register` adds your own"
            )
        return (
            f"model {name!r} has versions {', '.join(versions)} but no champion: serve one "
            f"as {name}@VERSION or make it champion with `streamsense models promote {name} "
            "VERSION`"
        )

    def load_serving(self, name: str) -> tuple[ModelAdapter[Any, Any], str | None]:
        """The champion of ``name``, loaded; when it is corrupt (sha256 mismatch, unreadable
        artifact, card or pointer, refused graph), the newest version that loads instead.
        Returns the adapter and, for a fallback, why (None when the champion serves)."""
        error: ModelError
        try:
            version = self.champion(name)
        except ModelIntegrityError as exc:
            version, error = None, exc
        else:
            if version is None:
                raise ModelNotFoundError(self._no_champion(name))
            try:
                return self.load(name, version), None
            except _UNSERVABLE as exc:
                error = exc
        for candidate in reversed(self.versions(name)):
            if candidate == version:
                continue
            try:
                adapter = self.load(name, candidate)
            except _UNSERVABLE as exc:
                log.error("model %s@%s cannot serve either: %s", name, candidate, exc)
                continue
            what = f"champion {name}@{version}" if version else f"champion pointer of {name}"
            why = f"{what} cannot be loaded ({error}); serving {candidate}"
            log.error("%s", why)
            return adapter, why
        msg = f"no version of {name!r} can be loaded; the champion {version}: {error}"
        raise ModelIntegrityError(msg) from error

    # -- writing -------------------------------------------------------------------------
    def set_champion(self, name: str, version: str) -> None:
        """Point ``name``'s champion at an existing ``version`` (atomically)."""
        self.version_dir(name, version)
        now = datetime.now(UTC).isoformat()
        text = json.dumps({"version": version, "updated": now})
        _write_atomic(self.root / name / CHAMPION_FILE, text)
        log.info("champion of %s is now %s", name, version)

    def put(
        self,
        name: str,
        version: str,
        artifact_path: Path,
        card: ModelCard,
        *,
        replace: bool = False,
    ) -> ModelCard:
        """Copy ``artifact_path`` (file or directory) into the store as ``name``/``version``.

        The card's sha256 must match the artifact. The version appears atomically; an
        existing version is an error unless ``replace`` (used to repair a corrupt copy).
        """
        _check_name("name", name)
        _check_name("version", version)
        if (card.name, card.version) != (name, version):
            msg = f"card is for {card.name}/{card.version}, not {name}/{version}"
            raise ModelError(msg)
        actual = artifact_sha256(artifact_path)
        if actual != card.sha256:
            msg = f"{artifact_path}: sha256 {actual} does not match the card ({card.sha256})"
            raise ModelIntegrityError(msg)
        model_dir = self.root / name
        model_dir.mkdir(parents=True, exist_ok=True)
        final = model_dir / version
        if final.exists() and not replace:
            msg = f"{name}/{version} already exists in {self.root}; versions are immutable"
            raise ModelError(msg)
        _sweep_stale(model_dir)
        tmp = model_dir / f".tmp-{version}-{uuid.uuid4().hex}"
        try:
            tmp.mkdir()
            target = tmp / card.artifact
            if artifact_path.is_dir():
                shutil.copytree(artifact_path, target)
            else:
                shutil.copyfile(artifact_path, target)
            if artifact_sha256(target) != card.sha256:
                msg = f"{name}/{version}: the copy in the store differs from {artifact_path}"
                raise ModelIntegrityError(msg)
            (tmp / CARD_FILE).write_text(card.model_dump_json(indent=2), encoding="utf-8")
            self._swap_in(tmp, final, replace=replace)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("stored %s/%s (%s) in %s", name, version, card.sha256[:12], self.root)
        return card

    @staticmethod
    def _swap_in(tmp: Path, final: Path, *, replace: bool) -> None:
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
