"""Settings of an inference worker (``STREAMSENSE_WORKER_*`` and the shared ``STREAMSENSE_*``)."""

from __future__ import annotations

from pydantic import Field

from streamsense.schemas.catalog import FRAME_MAX_BYTES, FRAME_MAX_PIXELS, TASKS, Task, TaskSpec
from streamsense.services.settings import StreamsenseSettings


class WorkerSettings(StreamsenseSettings):
    task: Task = "detect"
    """what the worker does: `detect`, `segment` or `sentiment` (set by the command)"""
    worker_model: str | None = Field(default=None, description="NAME or NAME@VERSION")
    worker_max_batch: int | None = Field(default=None, ge=1, le=4096)
    """most messages per model call (default: the model card's best measured batch)"""
    worker_max_wait_ms: int = Field(default=10, ge=0, le=10_000)
    """how long to wait to fill a batch (ms)"""
    worker_max_frame_age_ms: int = Field(default=5_000, ge=0)
    """frames older than this are skipped and counted, after validation (ms; 0: never)"""
    worker_latency_budget_ms: int = Field(default=500, ge=0, le=60_000)
    """frames: when modelling every frame held would leave the oldest one's result later than
    this after capture, or frames arrive faster than the model serves them, the worker is behind
    and serves the newest frame of each camera, cameras in turn (ms; 0: off)"""
    worker_decode_threads: int = Field(default=2, ge=1, le=64)
    """threads decoding JPEG frames while the model runs the previous batch"""
    worker_max_message_bytes: int = Field(default=FRAME_MAX_BYTES, ge=1024)
    """largest frame accepted (bytes)"""
    worker_max_pixels: int = Field(
        default=FRAME_MAX_PIXELS, ge=1, description="decompression guard"
    )
    worker_model_timeout_s: float = Field(default=30.0, gt=0, le=240)
    """a model call running longer turns health red, and once the worker is asked to stop it is
    given up (its batch is read again) (s; under the 300 s max.poll.interval.ms)"""
    worker_warmup_timeout_s: float = Field(default=600.0, gt=0, le=3600)
    """the model's warmup, at start and before a hot swap (one call per batch size; the first
    call of a TensorFlow model traces it, tens of seconds on a loaded CPU): past this the worker
    exits 1 at start, and a new version is rejected while the old one keeps serving (s)"""
    worker_group: str | None = Field(
        default=None, description="consumer group (default <topic prefix>streamsense-<task>)"
    )
    worker_follow_updates: bool = True
    """hot-swap the model when `models.updates` announces a new champion"""

    @property
    def spec(self) -> TaskSpec:
        return TASKS[self.task]

    @property
    def model_spec(self) -> tuple[str, str | None]:
        spec = self.worker_model or self.spec.default_model
        name, _, version = spec.partition("@")
        return name, version or None

    @property
    def group_id(self) -> str:
        return self.worker_group or self.group(self.task)

    @property
    def input_topic(self) -> str:
        return self.topic(self.spec.input_topic)

    @property
    def output_topic(self) -> str:
        return self.topic(self.spec.results_topic)
