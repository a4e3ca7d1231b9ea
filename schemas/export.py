"""Export JSON Schema files for every contract so consumers in any language can validate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import REGISTRY

#: Header-carried contracts (not JSON values, but their fields are exported all the same).
HEADER_MODELS: tuple[type[BaseModel], ...] = (FrameHeaders, DeadLetterInfo)


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document, for every message contract."""
    out: dict[str, dict[str, Any]] = {}
    for (name, version), cls in sorted(REGISTRY.items()):
        doc = cls.model_json_schema(by_alias=True, mode="serialization")
        doc["$id"] = f"{name}.v{version}.json"
        out[f"{name}.v{version}.json"] = doc
    for hcls in HEADER_MODELS:
        doc = hcls.model_json_schema(mode="serialization")
        schema = getattr(hcls, "SCHEMA", f"streamsense.{hcls.__name__}")
        version = getattr(hcls, "VERSION", 1)
        doc["$id"] = f"{schema}.headers.v{version}.json"
        out[doc["$id"]] = doc
    return out


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, doc in json_schemas().items():
        path = directory / fname
        path.write_bytes(
            orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
        written.append(path)
    return written
