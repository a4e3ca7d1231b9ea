"""The model store: versioned artifacts with cards and a champion pointer per model name.

Layout::

    <root>/<name>/<version>/<artifact>      model.tflite | saved_model/ | model.keras
    <root>/<name>/<version>/card.json       streamsense.models.card.ModelCard
    <root>/<name>/champion.json             {"version": ..., "updated": ...}

Versions are immutable and appear atomically: a version is assembled in a temporary
directory beside its final place and renamed into it; the champion pointer is replaced with
``os.replace``. Readers therefore never see a half-written version. Every load verifies the
artifact's sha256 against its card (:func:`streamsense.models.digest.artifact_sha256`: for a
directory, a digest over its sorted relative paths and file bytes), so a corrupt or tampered
artifact raises :class:`ModelIntegrityError` and is never served. How the store reads and
writes its files (no links, bounded reads, atomic renames, sweeping interrupted writes) is
:mod:`streamsense.models.store_files`.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from streamsense.models.card import ModelCard
from streamsense.models.digest import artifact_sha256
from streamsense.models.exceptions import (
    ModelError,
    ModelIntegrityError,
    ModelNotFoundError,
    SignatureError,
    UnsafeModelError,
)
from streamsense.models.store_files import (
    no_link,
    read_small,
    swap_in,
    sweep_stale,
    temp_path,
    write_atomic,
)
from streamsense.schemas.fields import NAME_PATTERN

if TYPE_CHECKING:
    from streamsense.models.base import ModelAdapter

log = logging.getLogger(__name__)

CARD_FILE = "card.json"
CHAMPION_FILE = "champion.json"
_NAME_RE = re.compile(NAME_PATTERN)
#: What makes a stored version unservable, so that a worker falls back to an older one (a
#: card whose parameters or adapter make no sense is a ModelIntegrityError; a graph whose
#: signature or probe output does not fit its task, a SignatureError).
_UNSERVABLE = (ModelIntegrityError, ModelNotFoundError, SignatureError, UnsafeModelError)


def _errors(exc: ValidationError) -> str:
    """A validation error without the input values (a card could hold anything)."""
    shown = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'card'}: {e['msg']}" for e in exc.errors()[:5]
    )
    return f"{exc.error_count()} invalid field(s): {shown}"


def _natural_key(version: str) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", version) if p]


def _check_name(kind: str, value: str) -> None:
    if not _NAME_RE.match(value) or value.startswith("."):
        msg = f"invalid model {kind} {value!r}: use letters, digits, '_', '.', '-'"
        raise ModelError(msg)


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
        return (
            path.is_dir()
            and not path.is_symlink()
            and not path.name.startswith(".")
            and bool(self._versions(path))
        )

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
        if not model_dir.is_dir() or model_dir.is_symlink():
            return []
        found = []
        for p in model_dir.iterdir():
            if p.name.startswith(".") or not p.is_dir() or not (p / CARD_FILE).is_file():
                continue
            if p.is_symlink():
                log.error("ignoring %s: a symbolic link in the model store", p)
                continue
            found.append(p.name)
        return sorted(found, key=_natural_key)

    def version_dir(self, name: str, version: str) -> Path:
        _check_name("name", name)
        _check_name("version", version)
        path = self.root / name / version
        if not (path / CARD_FILE).is_file():
            msg = f"model {name!r} has no version {version!r} in {self.root}"
            raise ModelNotFoundError(msg)
        for part in (path.parent, path, path / CARD_FILE):
            no_link(part)
        return path

    def card(self, name: str, version: str) -> ModelCard:
        path = self.version_dir(name, version) / CARD_FILE
        try:
            card = ModelCard.model_validate_json(read_small(path, "model card"))
        except ValidationError as exc:
            msg = f"{path}: unreadable model card: {_errors(exc)}"
            raise ModelIntegrityError(msg) from None
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
        no_link(path.parent)
        try:
            version = json.loads(read_small(path, "champion pointer"))["version"]
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{path}: unreadable champion pointer"
            raise ModelIntegrityError(msg) from exc
        if not isinstance(version, str) or not _NAME_RE.match(version):
            msg = f"{path}: the champion pointer names no valid version"
            raise ModelIntegrityError(msg)
        return version

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
        write_atomic(self.root / name / CHAMPION_FILE, text)
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
        no_link(model_dir)
        final = model_dir / version
        if final.exists() and not replace:
            msg = f"{name}/{version} already exists in {self.root}; versions are immutable"
            raise ModelError(msg)
        sweep_stale(model_dir)
        tmp = temp_path(final)
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
            swap_in(tmp, final, replace=replace)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("stored %s/%s (%s) in %s", name, version, card.sha256[:12], self.root)
        return card
