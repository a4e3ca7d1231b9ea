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
```

A camera's value comes from its own entry, else ``defaults:``, else the settings
(``STREAMSENSE_CAMERA_*``). Unknown keys, wrong types, values out of range, duplicate ids or
YAML keys, a missing file and an unsupported URL scheme are refused before anything starts,
each with one line that names the camera and the field (:class:`FleetConfigError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamsense.schemas.fields import SourceId
from streamsense.services.producers.exceptions import FleetConfigError, SourceError
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.producers.sources import open_source
from streamsense.services.producers.spec import CameraSpec, ReconnectPolicy

#: Most cameras in one file (each has its own metric labels and reader thread).
MAX_CAMERAS = 256
#: A fleet file is a few KB; anything this large is not one.
MAX_FILE_BYTES = 1024 * 1024


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
    source: str = Field(min_length=1, max_length=4096)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A duplicate mapping key is an error (plain YAML keeps the last one silently)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            line = key_node.start_mark.line + 1
            msg = f"line {line}: key {key!r} appears twice"
            raise FleetConfigError(msg)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _describe(exc: ValidationError, where: str) -> str:
    """One line: ``where: field: message`` for each error (values of ``source`` never shown:
    a URL may hold a password)."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "<entry>"
        shown = (
            "" if "source" in err["loc"] or err["type"] == "extra_forbidden" else err.get("input")
        )
        got = f" (got {shown!r})" if isinstance(shown, int | float | str) and shown != "" else ""
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc}: {msg}{got}")
    return f"{where}: " + "; ".join(parts)


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
    loader = _UniqueKeyLoader(data)  # a SafeLoader: plain data only, never Python objects
    try:
        return loader.get_single_data()
    except FleetConfigError as exc:
        msg = f"{path}: {exc}"
        raise FleetConfigError(msg) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        msg = f"{path}: not valid YAML: {where}{problem}"
        raise FleetConfigError(msg) from exc
    finally:
        loader.dispose()


def load_fleet(path: Path, settings: CameraProducerSettings) -> list[CameraSpec]:
    """The cameras of the fleet file at ``path``; FleetConfigError with one line otherwise."""
    raw = read_fleet_file(path)
    name = path.name
    if not isinstance(raw, dict):
        msg = f"{name}: expected a mapping with `cameras:` (and optionally `defaults:`)"
        raise FleetConfigError(msg)
    unknown = sorted(str(k) for k in raw if k not in ("defaults", "cameras"))
    if unknown:
        msg = f"{name}: unknown key(s) {', '.join(unknown)}: expected `defaults:` and `cameras:`"
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
            label = f"camera {entry['id']!r} ({label})"
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
        specs.append(_spec(cam, settings, path.parent, f"{name}: {label}"))
    return specs


def _spec(cam: CameraEntry, s: CameraProducerSettings, base: Path, label: str) -> CameraSpec:
    r = cam.reconnect or ReconnectOptions()

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    reconnect = ReconnectPolicy(
        initial_s=pick(r.initial_s, s.camera_reconnect_initial_s),
        max_s=pick(r.max_s, s.camera_reconnect_max_s),
        attempts=r.attempts,  # a fleet retries until stopped unless the file says otherwise
    )
    source = cam.source.strip()
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
