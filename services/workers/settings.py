"""Settings of an inference worker (``STREAMSENSE_WORKER_*`` and the shared ``STREAMSENSE_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamsense.services.settings import StreamsenseSettings

WorkerTask = Literal["detect", "segment", "sentiment"]

#: Default model per task (names from the default zoo, ``streamsense models fetch``).
DEFAULT_MODELS: dict[str, str] = {
    "detect": "coco-centernet",
    "segment": "person-selfie",
    "sentiment": "sentiment-tweets",
}
INPUT_TOPICS: dict[str, str] = {"detect": "frames", "segment": "frames", "sentiment": "text"}
OUTPUT_TOPICS: dict[str, str] = {
    "detect": "results.detections",
    "segment": "results.segments",
    "sentiment": "results.sentiment",
}


class WorkerSettings(StreamsenseSettings):
    task: WorkerTask = "detect"
    worker_model: str | None = Field(default=None, description="NAME or NAME@VERSION")
    worker_max_batch: int | None = Field(default=None, ge=1, le=4096)
    worker_max_wait_ms: int = Field(default=10, ge=0, le=10_000)
    worker_max_frame_age_ms: int = Field(default=5_000, ge=0)
    worker_decode_threads: int = Field(default=2, ge=1, le=64)
    worker_max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    worker_max_pixels: int = Field(default=8192 * 8192, ge=1, description="decompression guard")
    worker_group: str | None = None
    worker_follow_updates: bool = True

    @property
    def model_spec(self) -> tuple[str, str | None]:
        spec = self.worker_model or DEFAULT_MODELS[self.task]
        name, _, version = spec.partition("@")
        return name, version or None

    @property
    def group_id(self) -> str:
        return self.worker_group or f"streamsense-{self.task}"

    @property
    def input_topic(self) -> str:
        return self.topic(INPUT_TOPICS[self.task])

    @property
    def output_topic(self) -> str:
        return self.topic(OUTPUT_TOPICS[self.task])
