"""The models of the model store, read defensively: a broken card is reported, not fatal.

Nothing here names a filesystem path to API clients: errors are reported relative to the
store (``<store>/name/version/card.json``), other absolute paths as ``<path>``; the full
message goes to the gateway's log.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from streamsense.services.gateway.responses import ModelVersionInfo, StoredModel

log = logging.getLogger(__name__)

_ABSOLUTE = re.compile(r"(?<![\w<>:/.~])/[^\s'\":,;()]+")


def without_paths(message: str, root: Path) -> str:
    """``message`` with the store's location and any other absolute path taken out."""
    for form in {str(root), str(root.resolve())}:
        message = message.replace(form, "<store>")
    return _ABSOLUTE.sub("<path>", message)


def list_models(root: Path) -> list[StoredModel]:
    """Every model in the store with its versions' cards and its champion (blocking I/O)."""
    if not root.is_dir():
        return []
    from streamsense.models.store import ModelStore

    store = ModelStore(root)
    out: list[StoredModel] = []
    try:
        names = store.list()
    except Exception as exc:  # an unreadable store directory is reported as empty
        log.warning("cannot list the model store %s: %s", root, exc)
        return []
    for name in names:
        try:
            champion = store.champion(name)
        except Exception as exc:  # a corrupt pointer is shown as "no champion"
            log.warning("model %s: %s", name, exc)
            champion = None
        versions = []
        for version in store.versions(name):
            try:
                card = store.card(name, version)
            except Exception as exc:  # keep listing the others
                log.warning("model %s/%s: %s", name, version, exc)
                error = without_paths(str(exc), root)[:500]
                versions.append(ModelVersionInfo(version=version, error=error))
                continue
            versions.append(
                ModelVersionInfo(
                    version=version,
                    task=card.task,
                    adapter=card.adapter,
                    format=card.format,
                    sha256=card.sha256,
                    licence=card.licence,
                    created=card.created,
                    metrics=card.metrics,
                )
            )
        out.append(StoredModel(name=name, champion=champion, versions=versions))
    return out
