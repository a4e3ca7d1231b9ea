"""The model card stored as ``card.json`` beside every artifact in the model store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from streamsense.models.exceptions import ModelIntegrityError
from streamsense.schemas.fields import Label, ModelName, VersionTag
from streamsense.schemas.model_updates import Task
from streamsense.schemas.results import SourceRef

#: Largest batch a card may ask for (the sentiment model peaks at 1024 on a CPU).
MAX_BATCH = 4096
#: Most class names a card may list (COCO has 80).
MAX_LABELS = 10000
#: How an artifact is stored; decides which runtime loads it.
ArtifactFormat = Literal["tflite", "saved_model", "keras"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Frozen):
    """Where an artifact came from."""

    kind: Literal["pypi", "npm", "user", "trained"]
    package: str | None = Field(default=None, description="registry package name")
    package_version: str | None = None
    files: list[str] = Field(default_factory=list, description="files taken from the package")
    upstream: str | None = Field(default=None, description="URL of the original model")
    notes: str | None = None
    learned_until: SourceRef | None = Field(
        default=None,
        description="a version trained online: the last labeled record it learned from",
    )


class InputSpec(_Frozen):
    """What the model itself consumes (adapters accept any image size or any text)."""

    kind: Literal["image", "text"]
    shape: list[int | None] = Field(description="model input shape, None for free dimensions")
    dtype: str
    value_range: tuple[float, float] | None = Field(
        default=None, description="pixel value range the model expects, e.g. [-1, 1]"
    )
    resize: Literal["stretch", "letterbox", "none"] | None = None


class ModelCard(_Frozen):
    """Everything needed to load, verify, serve and attribute one model version."""

    name: ModelName
    version: VersionTag
    task: Task
    adapter: str = Field(description="adapter kind, see streamsense.models.registry.ADAPTERS")
    format: ArtifactFormat
    artifact: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="file or directory name inside the version directory (a plain name)",
    )
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    licence: str
    source: Source
    input: InputSpec
    labels: list[Label] = Field(
        max_length=MAX_LABELS,
        description="class names, indexed by the class id the model emits (they travel in "
        "results, so the results' label bounds apply)",
    )
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="adapter settings, e.g. score_threshold"
    )
    preferred_batch: int = Field(
        default=1, ge=1, le=MAX_BATCH, description="best batch size measured"
    )
    max_batch: int = Field(
        default=1,
        ge=1,
        le=MAX_BATCH,
        description="largest batch sent in one call (warmup runs every power of two up to it)",
    )
    description: str = ""
    allow_unsafe_ops: bool = Field(
        default=False,
        description="registered with --allow-unsafe-ops: the loader accepts the ops below",
    )
    unsafe_ops: list[str] = Field(
        default_factory=list, description="the file/process/Python/network ops the graph holds"
    )
    created: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("artifact")
    @classmethod
    def _plain_artifact(cls, value: str) -> str:
        if value in (".", ".."):
            msg = "artifact must name a file or directory inside the version directory"
            raise ValueError(msg)
        return value

    def number_param(self, key: str, default: float, low: float, high: float) -> float:
        """``params[key]`` as a number in ``[low, high]`` (``default`` when absent);
        ModelIntegrityError naming the parameter otherwise. A card is read from the store,
        so its values are checked before an adapter uses them: a threshold of -1 would
        publish negative scores, an IoU of 7 fails inside TensorFlow on every image with a
        detection (and not on the warmup's random image)."""
        value = self.params.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            shown = value if isinstance(value, int | float) else f"a {type(value).__name__}"
            msg = (
                f"{self.name}/{self.version}: card parameter {key!r} must be a number from "
                f"{low:g} to {high:g}, got {shown}"
            )
            raise ModelIntegrityError(msg)
        return float(value)

    def int_param(self, key: str, default: int, low: int, high: int) -> int:
        """``params[key]`` as an integer in ``[low, high]``; see :meth:`number_param`."""
        value = self.number_param(key, default, low, high)
        if not value.is_integer():
            msg = f"{self.name}/{self.version}: card parameter {key!r} must be an integer"
            raise ModelIntegrityError(msg)
        return int(value)

    def label(self, class_id: int) -> str:
        if 0 <= class_id < len(self.labels):
            return self.labels[class_id]
        return f"class_{class_id}"
