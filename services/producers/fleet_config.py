"""The fleet file of ``streamsense produce cameras --config cameras.yaml``, validated strictly.

```yaml
defaults:                  # optional: every camera's values unless it sets its own
  fps: 5
  width: 640
  reconnect: {initial_s: 0.5, max_s: 2}
cameras:
  - id: lobby
    source: rtsp://user:pass@10.0.0.5/stream1
  - id: door
    source: videos/door.mp4     # relative to this file
    loop: true
  - id: gate
    source: rtsp://viewer@10.0.0.6/stream1
    password_env: GATE_PASSWORD # or password_file:; source_env: / source_file: for a whole URL
```

A camera's value comes from its own entry, else ``defaults:``, else the settings
(``STREAMSENSE_CAMERA_*``). Unknown keys, wrong types, values out of range, duplicate ids or
YAML keys, a missing file and an unsupported URL scheme are refused before anything starts,
each with one line that names the camera and the field (:class:`FleetConfigError`). Hostile
files end the same way, quickly: nesting deeper than :data:`MAX_DEPTH`, a list or mapping used
as a key, bytes that are not text, over :data:`MAX_FILE_BYTES`. Credentials can stay out of the
file (:mod:`~streamsense.services.producers.fleet_secrets`).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamsense.schemas.fields import SourceId
from streamsense.services.producers.exceptions import FleetConfigError, SourceError
from streamsense.services.producers.fleet_secrets import (
    ENV_NAME_PATTERN,
    read_secret,
    with_password,
)
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.producers.sources import STREAM_SCHEMES, open_source
from streamsense.services.producers.spec import CameraSpec, ReconnectPolicy

#: Most cameras in one file (each has its own metric labels and reader thread).
MAX_CAMERAS = 256
#: A fleet file of 256 cameras is ~30 KB; anything this large is not one (and PyYAML's pure
#: Python parser, needed for the checks below, takes ~1 s for this much on a small host).
MAX_FILE_BYTES = 256 * 1024
#: Deepest nesting of lists and mappings (a fleet file needs 4); deeper is refused as it is read.
MAX_DEPTH = 16
#: Problems listed in one error line at most (the others are counted).
MAX_PROBLEMS = 5


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ReconnectOptions(_Strict):
    initial_s: float | None = Field(default=None, gt=0, le=60)
    max_s: float | None = Field(default=None, gt=0, le=600)
    attempts: int | None = Field(default=None, ge=0, le=1_000_000)


class CameraOptions(_Strict):
    fps: float | None = Field(default=None, gt=0, le=1000)
    width: int | None = Field(default=None, ge=16, le=16384)
    jpeg_quality: int | None = Field(default=None, ge=1, le=100)
    loop: bool | None = None
    max_frames: int | None = Field(default=None, ge=1)
    reconnect: ReconnectOptions | None = None
    open_timeout_s: float | None = Field(default=None, gt=0, le=300)
    read_timeout_s: float | None = Field(default=None, gt=0, le=300)


class CameraEntry(CameraOptions):
    id: SourceId
    source: str | None = Field(default=None, min_length=1, max_length=4096)
    #: the whole source URL from an environment variable or a file (a token in its query)
    source_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    source_file: str | None = Field(default=None, min_length=1, max_length=4096)
    #: the password of the URL's user, from an environment variable or a file
    password_env: str | None = Field(default=None, pattern=ENV_NAME_PATTERN)
    password_file: str | None = Field(default=None, min_length=1, max_length=4096)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A duplicate mapping key is an error (plain YAML keeps the last one silently), so is a
    key that is a list or a mapping (a TypeError before) and nesting deeper than
    :data:`MAX_DEPTH` (a RecursionError before, after seconds). Aliases are built once and
    shared, never expanded, and nothing below walks a value the models do not expect: a
    "billion laughs" file costs its size, not its expansion."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                msg = f"line {line}: nested more than {MAX_DEPTH} levels deep"
                raise FleetConfigError(msg)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            msg = f"line {line}: a key must be a plain value (text), not a list or mapping"
            raise FleetConfigError(msg)
        if key_node.tag == "tag:yaml.org,2002:merge":
            msg = (
                f"line {line}: `<<` merge keys are not supported: put shared values in `defaults:`"
            )
            raise FleetConfigError(msg)
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            msg = f"line {line}: a key must be a plain value (text)"
            raise FleetConfigError(msg)
        if key in seen:
            msg = f"line {line}: key {key!r} appears twice"
            raise FleetConfigError(msg)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _short(value: object, limit: int = 64) -> str:
    """``repr(value)`` cut to ``limit`` characters: a hostile file's 5,000-character id or key
    does not make the error line 5,000 characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - MAX_PROBLEMS} more" if len(items) > MAX_PROBLEMS else ""
    return "; ".join(items[:MAX_PROBLEMS]) + more


def _describe(exc: ValidationError, where: str) -> str:
    """One line: ``where: field: message`` for the first errors (values of ``source`` never
    shown: a URL may hold a password)."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(_short(p, 40) if not isinstance(p, str) else p[:40] for p in err["loc"])
        shown = (
            "" if "source" in err["loc"] or err["type"] == "extra_forbidden" else err.get("input")
        )
        got = (
            f" (got {_short(shown)})"
            if isinstance(shown, int | float | str) and shown != ""
            else ""
        )
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc or '<entry>'}: {msg[:200]}{got}")
    return f"{where}: " + _listed(parts)


def _merge(defaults: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    out = {**defaults, **own}
    if isinstance(defaults.get("reconnect"), dict) and isinstance(own.get("reconnect"), dict):
        out["reconnect"] = {**defaults["reconnect"], **own["reconnect"]}
    return out


def read_fleet_file(path: Path) -> Any:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}"
        raise FleetConfigError(msg) from exc
    if len(data) > MAX_FILE_BYTES:
        msg = f"{path} is over {MAX_FILE_BYTES // 1024} KiB: not a fleet file"
        raise FleetConfigError(msg)
    loader: _UniqueKeyLoader | None = None
    try:
        # a SafeLoader: plain data only, never Python objects; it checks the bytes are text
        loader = _UniqueKeyLoader(data)
        return loader.get_single_data()
    except FleetConfigError as exc:
        msg = f"{path.name}: {exc}"
        raise FleetConfigError(msg) from exc
    except yaml.reader.ReaderError as exc:  # not UTF-8/16 text, or a NUL or control byte
        msg = f"{path.name}: not valid YAML: byte {exc.position}: not text ({exc.reason})"
        raise FleetConfigError(msg) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        msg = f"{path.name}: not valid YAML: {where}{problem[:200]}"
        raise FleetConfigError(msg) from exc
    finally:
        if loader is not None:
            loader.dispose()


def load_fleet(
    path: Path, settings: CameraProducerSettings, environ: Mapping[str, str] | None = None
) -> list[CameraSpec]:
    """The cameras of the fleet file at ``path``; FleetConfigError with one line otherwise.

    ``environ``: where ``password_env`` / ``source_env`` are looked up; by default the process
    environment, read here, once, as the file is loaded (the one place this loader reads it;
    see :mod:`~streamsense.services.producers.fleet_secrets` for why not a settings field)."""
    env = os.environ if environ is None else environ
    raw = read_fleet_file(path)
    name = path.name
    if not isinstance(raw, dict):
        msg = f"{name}: expected a mapping with `cameras:` (and optionally `defaults:`)"
        raise FleetConfigError(msg)
    unknown = sorted(str(k)[:40] for k in raw if k not in ("defaults", "cameras"))
    if unknown:
        shown = ", ".join(unknown[:MAX_PROBLEMS])
        more = f" and {len(unknown) - MAX_PROBLEMS} more" if len(unknown) > MAX_PROBLEMS else ""
        msg = f"{name}: unknown key(s) {shown}{more}: expected `defaults:` and `cameras:`"
        raise FleetConfigError(msg)
    defaults = raw.get("defaults") or {}
    try:
        CameraOptions.model_validate(defaults)
    except ValidationError as exc:
        raise FleetConfigError(_describe(exc, f"{name}: defaults")) from exc
    cameras = raw.get("cameras")
    if not isinstance(cameras, list) or not cameras:
        msg = f"{name}: `cameras:` must be a list of at least one camera (id, source)"
        raise FleetConfigError(msg)
    if len(cameras) > MAX_CAMERAS:
        msg = f"{name}: {len(cameras)} cameras, more than {MAX_CAMERAS} in one process"
        raise FleetConfigError(msg)
    specs: list[CameraSpec] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(cameras):
        label = f"cameras[{i}]"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            label = f"camera {_short(entry['id'])} ({label})"
        if not isinstance(entry, dict):
            msg = f"{name}: {label}: expected a mapping with `id:` and `source:`"
            raise FleetConfigError(msg)
        try:
            cam = CameraEntry.model_validate(_merge(defaults, entry))
        except ValidationError as exc:
            raise FleetConfigError(_describe(exc, f"{name}: {label}")) from exc
        if cam.id in seen:
            msg = f"{name}: {label}: id {cam.id!r} is also cameras[{seen[cam.id]}]'s"
            raise FleetConfigError(msg)
        seen[cam.id] = i
        where = f"{name}: {label}"
        specs.append(
            _spec(cam, _source(cam, env, path.parent, where), settings, path.parent, where)
        )
    return specs


def _source(cam: CameraEntry, env: Mapping[str, str], base: Path, label: str) -> str:
    """The camera's source with its credentials: written in the file, or from the variable or
    file it names (never shown: errors say where it came from)."""
    given = {k: v for k in ("source", "source_env", "source_file") if (v := getattr(cam, k))}
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        msg = f"{label}: give exactly one of source, source_env and source_file (got {what})"
        raise FleetConfigError(msg)
    ((key, ref),) = given.items()
    if key == "source":
        source = ref.strip()
    else:
        source = read_secret(key, ref, env, base, label).strip()
        scheme, sep, _ = source.partition("://")
        if not sep or scheme.lower() not in STREAM_SCHEMES:
            msg = (
                f"{label}: {key}: the value of {ref} is not a stream URL "
                f"({', '.join(sorted(STREAM_SCHEMES))})"
            )
            raise FleetConfigError(msg)
    if cam.password_env and cam.password_file:
        msg = f"{label}: give one of password_env and password_file, not both"
        raise FleetConfigError(msg)
    for pkey in ("password_env", "password_file"):
        if pref := getattr(cam, pkey):
            origin = f"environment variable {pref}" if pkey == "password_env" else f"file {pref}"
            with_password(source, "", pkey, origin, label)  # the URL first: a clearer error
            password = read_secret(pkey, pref, env, base, label)
            source = with_password(source, password, pkey, origin, label)
    return source


def _spec(
    cam: CameraEntry, source: str, s: CameraProducerSettings, base: Path, label: str
) -> CameraSpec:
    r = cam.reconnect or ReconnectOptions()

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    reconnect = ReconnectPolicy(
        initial_s=pick(r.initial_s, s.camera_reconnect_initial_s),
        max_s=pick(r.max_s, s.camera_reconnect_max_s),
        attempts=r.attempts,  # a fleet retries until stopped unless the file says otherwise
    )
    try:
        open_source(source, base=base)  # the kind, the file's existence, the URL's scheme
    except SourceError as exc:
        msg = f"{label}: source: {exc}"
        raise FleetConfigError(msg) from exc
    if "://" not in source and not source.isdigit() and not Path(source).expanduser().is_absolute():
        source = str(base / Path(source).expanduser())
    return CameraSpec(
        camera_id=cam.id,
        source=source,
        fps=pick(cam.fps, s.camera_fps),
        default_fps=s.camera_default_fps,
        width=pick(cam.width, s.camera_width),
        jpeg_quality=pick(cam.jpeg_quality, s.camera_jpeg_quality),
        loop=pick(cam.loop, s.camera_loop),
        max_frames=pick(cam.max_frames, s.camera_max_frames),
        reconnect=reconnect,
        open_timeout_s=pick(cam.open_timeout_s, s.camera_open_timeout_s),
        read_timeout_s=pick(cam.read_timeout_s, s.camera_read_timeout_s),
    )
