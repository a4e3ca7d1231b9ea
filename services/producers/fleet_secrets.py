"""Credentials of a fleet file's cameras kept out of the file: ``password_env`` /
``password_file`` (the password of the URL's user) and ``source_env`` / ``source_file`` (the
whole URL, for cameras that take a token in the query).

```yaml
cameras:
  - id: gate
    source: rtsp://viewer@10.0.0.5/stream1   # the user is in the file, the password is not
    password_env: GATE_PASSWORD
  - id: yard
    source_file: /run/secrets/yard-url       # a Docker / Kubernetes secret
```

Why here and not in a settings object: the variables a fleet file needs are named by the file,
not known in advance, so no ``STREAMSENSE_*`` field can hold them. The fleet file is a
configuration source of its own and :func:`~streamsense.services.producers.fleet_config.load_fleet`
is its loader, validated once like a settings object: the environment is read there, once, when
the file is loaded (never at import), and only the variables the file declares. Tests hand it a
mapping instead.

A reference that cannot be resolved (a variable not set or empty, a file missing, empty or not a
regular file) is a :class:`FleetConfigError` naming the camera, the key and the variable or
file, never the value: a camera never starts with an empty password. The value is never shown
either: errors name where it came from, and the URL built with it is shown through
:func:`~streamsense.services.producers.redact.redact_url` like any URL written in the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from streamsense.services.producers.exceptions import FleetConfigError
from streamsense.services.producers.regular_file import NotRegularFileError, read_regular

#: Longest secret read from a file or variable (a URL is at most 4096 characters too).
MAX_SECRET_BYTES = 4096
#: The name of an environment variable a fleet file may reference.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


def read_secret(key: str, ref: str, env: Mapping[str, str], base: Path, label: str) -> str:
    """The value ``key`` (``password_env``, ``source_file``...) refers to; ``ref`` is the
    variable's name (``*_env``) or the file's path (``*_file``, relative to ``base``)."""
    where = f"{label}: {key}"
    if key.endswith("_env"):
        value = env.get(ref)
        if value is None:
            msg = f"{where}: environment variable {ref} is not set"
            raise FleetConfigError(msg)
        origin = f"environment variable {ref}"
    else:
        path = Path(ref).expanduser()
        value = _read_file(path if path.is_absolute() else base / path, where)
        origin = f"file {ref}"
        if value.endswith("\n"):  # `echo pw > file` and most editors end the file with one
            value = value[:-2] if value.endswith("\r\n") else value[:-1]
    if not value:
        msg = f"{where}: {origin} is empty"
        raise FleetConfigError(msg)
    if len(value.encode("utf-8", "surrogatepass")) > MAX_SECRET_BYTES:
        msg = f"{where}: {origin} holds more than {MAX_SECRET_BYTES} bytes"
        raise FleetConfigError(msg)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        msg = f"{where}: {origin} holds a line break or another control character"
        raise FleetConfigError(msg)
    return value


def _read_file(path: Path, where: str) -> str:
    try:  # never blocks: a FIFO in the secret's place is refused
        data = read_regular(path, MAX_SECRET_BYTES + 3)
    except NotRegularFileError:
        msg = f"{where}: {path} is not a regular file"
        raise FleetConfigError(msg) from None
    except OSError as exc:
        msg = f"{where}: cannot read {path}: {exc.strerror or exc}"
        raise FleetConfigError(msg) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        msg = f"{where}: {path} is not UTF-8 text"
        raise FleetConfigError(msg) from None


def with_password(url: str, password: str, key: str, origin: str, label: str) -> str:
    """``scheme://user@host/...`` with ``password`` percent-encoded after the user (so a
    ``/ # ? @`` in it is never taken for the end of the credentials)."""
    where = f"{label}: {key}"
    scheme, sep, rest = url.partition("://")
    if not sep:
        msg = f"{where}: a password needs a stream URL as source (rtsp://USER@host/...)"
        raise FleetConfigError(msg)
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    user, at, host = authority.rpartition("@")
    if not at or not user:
        msg = (
            f"{where}: the source names no user: write it as {scheme}://USER@host/... and the "
            f"password comes from {origin}"
        )
        raise FleetConfigError(msg)
    if ":" in user:
        msg = f"{where}: the source already holds a password: remove it from the URL"
        raise FleetConfigError(msg)
    return f"{scheme}://{user}:{quote(password, safe='')}@{host}{tail}"
