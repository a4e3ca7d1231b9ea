"""Base class for JSON message contracts: every message carries its schema name and version."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Message(BaseModel):
    """A versioned JSON message.

    Subclasses set ``SCHEMA`` and ``VERSION``; the serialized form always contains the two
    fields ``schema`` and ``version`` so consumers in any language can dispatch and validate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    SCHEMA: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    schema_name: str = Field(default="", alias="schema")
    version: int = 0

    @model_validator(mode="before")
    @classmethod
    def _fill_and_check_header(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        name = data.get("schema", data.get("schema_name", cls.SCHEMA))
        version = data.get("version", cls.VERSION)
        if name != cls.SCHEMA:
            msg = f"expected schema {cls.SCHEMA!r}, got {name!r}"
            raise ValueError(msg)
        if version != cls.VERSION:
            msg = f"schema {cls.SCHEMA!r}: expected version {cls.VERSION}, got {version!r}"
            raise ValueError(msg)
        data.pop("schema_name", None)
        data["schema"] = cls.SCHEMA
        data["version"] = cls.VERSION
        return data

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form: aliases applied (``schema``), JSON-compatible values."""
        return self.model_dump(mode="json", by_alias=True)
