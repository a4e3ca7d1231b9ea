"""The image files of a folder or a glob source, without following symbolic links.

Whoever can write into a watched folder (an upload drop, a shared mount) could otherwise make
the producer read what the folder's owner never put there: a link to any JPEG or PNG the
producer's user can read (published as frames), to a FIFO or a device (``is_file()`` follows
the link; opening a tape or a terminal has side effects), a link loop, or a directory link that
takes a ``**`` glob out of the folder (Python's ``glob`` follows them: two links to ``.`` made
it list 2^40 paths). So a folder or a glob is read without following links: an entry that is a
link, or not a regular file, is skipped with one WARNING naming it and counted
(:data:`~streamsense.services.producers.metrics.FILES_REFUSED`, :attr:`Listing.refused`); a
``**`` walk never enters a linked directory. The folder named as the source may itself be a
link (the operator named it), and so may an image named directly. Reads open with
``O_NOFOLLOW`` too (:func:`sources.read_image`), so a file swapped for a link after the listing
is refused then.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from streamsense.services.producers.metrics import FILES_REFUSED

log = logging.getLogger(__name__)

_MAGIC = frozenset("*?[")


@dataclass
class Listing:
    paths: list[Path] = field(default_factory=list)
    #: entries skipped: links, FIFOs, devices
    refused: int = 0
    _seen: set[Path] = field(default_factory=set)

    def refuse(self, path: Path, why: str, reason: str) -> None:
        if path in self._seen:  # a `**` walk may meet an entry twice: one warning, one count
            return
        self._seen.add(path)
        self.refused += 1
        FILES_REFUSED.labels(reason).inc()
        log.warning("skipping %s: %s", path, why)


def _is_image(name: str, suffixes: frozenset[str]) -> bool:
    return Path(name).suffix.lower() in suffixes


def _take(entry: os.DirEntry[str], listing: Listing) -> None:
    """A matching file: kept if it is a regular file reached without a link."""
    path = Path(entry.path)
    try:
        if entry.is_symlink():
            listing.refuse(path, "a symbolic link (links in image folders are not followed)",
                           "symlink")  # fmt: skip
        elif entry.is_file(follow_symlinks=False):
            listing.paths.append(path)
        elif not entry.is_dir(follow_symlinks=False):
            listing.refuse(path, "not a regular file (a FIFO, a device or a socket)",
                           "not_regular")  # fmt: skip
    except OSError as exc:
        log.warning("skipping %s: %s", path, exc.strerror or exc)


def _links_to_folder(entry: os.DirEntry[str]) -> bool:
    try:  # only looks at what the link names (a loop, a dangling link: no folder)
        return entry.is_dir()
    except OSError:
        return False


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        log.warning("cannot list %s: %s", folder, exc.strerror or exc)
        return []


def list_folder(folder: Path, suffixes: frozenset[str]) -> Listing:
    """The image files directly in ``folder`` (sorted)."""
    listing = Listing()
    for entry in _scan(folder):
        if _is_image(entry.name, suffixes):
            _take(entry, listing)
    listing.paths.sort()
    return listing


def _visible(name: str, segment: str) -> bool:
    """As :mod:`glob`: ``*`` does not match a hidden name unless the pattern says ``.``."""
    return not name.startswith(".") or segment.startswith(".")


def list_glob(pattern: str, suffixes: frozenset[str]) -> Listing:
    """The image files matching ``pattern`` (``*``, ``?``, ``[...]`` within a name; ``**``: any
    folders below), found without entering a linked directory."""
    parts = Path(pattern).parts
    first = next((i for i, p in enumerate(parts) if _MAGIC & set(p)), len(parts) - 1)
    root = Path(*parts[:first]) if first else Path()
    segments = parts[first:]
    listing, seen = Listing(), set()
    # (folder, index of the segment its entries must match): a stack, not recursion, so a
    # folder tree thousands deep cannot exhaust Python's stack
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, i = stack.pop()
        if (folder, i) in seen:  # `**/**` reaches a folder by several routes
            continue
        seen.add((folder, i))
        segment, last = segments[i], i == len(segments) - 1
        if segment == "**":
            if not last:
                stack.append((folder, i + 1))  # zero folders
            for entry in _scan(folder):
                if not _visible(entry.name, ""):
                    continue
                if entry.is_symlink():
                    if _links_to_folder(entry):
                        listing.refuse(Path(entry.path), "a linked folder (not followed)",
                                       "symlink")  # fmt: skip
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), i))
                elif last and _is_image(entry.name, suffixes):
                    _take(entry, listing)
            continue
        for entry in _scan(folder):
            if not (_visible(entry.name, segment) and fnmatch.fnmatchcase(entry.name, segment)):
                continue
            if last:
                if _is_image(entry.name, suffixes):
                    _take(entry, listing)
            elif entry.is_symlink():
                listing.refuse(Path(entry.path), "a linked folder (not followed)", "symlink")
            elif entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), i + 1))
    listing.paths = sorted(set(listing.paths))
    return listing
