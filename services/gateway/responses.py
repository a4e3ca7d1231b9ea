"""Response models of the gateway's REST API (they make up its OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from streamsense.schemas.cameras import STALE_AFTER_INTERVALS, CameraStatus
from streamsense.schemas.catalog import Task
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult

AnyResult = DetectionResult | SegmentResult | SentimentResult


class Sources(BaseModel):
    tasks: dict[Task, list[str]] = Field(description="sources with results, per task")
    cameras: list[str] = Field(description="cameras with results or a thumbnail")
    totals: dict[str, int] = Field(
        description="how many ids each listing holds (per task, and cameras with a thumbnail): "
        "more than listed when an answer is cut at STREAMSENSE_GATEWAY_MAX_LISTED"
    )
    truncated: bool = Field(description="some listing was cut at STREAMSENSE_GATEWAY_MAX_LISTED")


class LatestResult(BaseModel):
    task: Task
    source: str
    written_ms: int | None = Field(description="when the sink wrote it (ms since the epoch)")
    result: AnyResult


class StreamEntry(BaseModel):
    id: str = Field(description="Redis stream id <ms>-<n>; pass it as ?since= to page on")
    result: AnyResult


class ResultPage(BaseModel):
    task: Task
    source: str
    items: list[StreamEntry] = Field(description="oldest first")
    last_id: str | None = Field(description="id of the last item, None when there is none")
    skipped: int = Field(
        default=0,
        description="entries in this page left out as not valid results (an older or foreign "
        "writer left them); last_id pages on past them",
    )


class ModelVersionInfo(BaseModel):
    version: str
    task: str | None = None
    adapter: str | None = None
    format: str | None = None
    sha256: str | None = None
    licence: str | None = None
    created: datetime | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    error: str | None = Field(default=None, description="why the card could not be read")


class StoredModel(BaseModel):
    name: str
    champion: str | None
    versions: list[ModelVersionInfo]


class InService(BaseModel):
    task: Task
    name: str
    version: str
    sources: int = Field(description="sources whose latest result came from this version")


class Models(BaseModel):
    store_found: bool = Field(description="the model store exists (its path is not shown)")
    models: list[StoredModel]
    in_service: list[InService] = Field(description="from the latest result of each source")


class Percentiles(BaseModel):
    p50: float
    p95: float
    max: float


class TaskStats(BaseModel):
    results: int = Field(description="results written in the window")
    per_s: float
    e2e_ms: Percentiles | None = Field(description="capture -> written to Redis")
    sink_ms: Percentiles | None = Field(description="result in Kafka -> written to Redis")
    truncated: bool = Field(description="more results than were sampled")


class Stats(BaseModel):
    window_s: float
    tasks: dict[Task, TaskStats]
    consumer_lag: dict[str, int] = Field(description="sink lag per topic[partition]")
    total_lag: int
    live_clients: int
    live_dropped: int = Field(description="messages dropped for slow WebSocket clients")
    live_evicted: int = Field(description="WebSocket clients closed (1013) for taking nothing")
    now_ms: int = Field(description="the serving layer's clock (ms since the epoch)")


#: A camera's reported state, or ``stale``: no status for too long, its producer is gone.
EffectiveState = Literal["online", "reconnecting", "offline", "stale"]


class CameraEntry(BaseModel):
    camera_id: str
    state: EffectiveState = Field(
        description=f"the reported state, or stale: no status for {STALE_AFTER_INTERVALS} of its "
        "intervals, so its producer is gone whatever the status says"
    )
    reason: str | None = Field(description="why it is not online (for stale: since when)")
    status_age_s: float = Field(description="since the status was made (serving layer's clock)")
    last_frame_age_s: float | None = Field(description="since the last frame sent; null: none")
    reported: CameraStatus = Field(description="the newest status as its producer sent it")


class Cameras(BaseModel):
    now_ms: int = Field(description="the serving layer's clock (ms since the epoch)")
    cameras: list[CameraEntry] = Field(description="every camera with a status, by id")
    malformed: int = Field(description="stored entries skipped as not a valid camera status")
    total: int = Field(description="entries stored (valid or not); more than read when cut")
    truncated: bool = Field(
        description="more entries are stored than STREAMSENSE_GATEWAY_MAX_LISTED: an arbitrary "
        "subset of them was read"
    )


class Health(BaseModel):
    ok: bool
    redis: bool
    live: bool = Field(description="the pub/sub subscriber is connected")
    live_clients: int
