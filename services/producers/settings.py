"""Settings of the two producer services (``STREAMSENSE_CAMERA_*``, ``STREAMSENSE_TEXT_*`` and the
shared ``STREAMSENSE_*``). Command-line options override them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import Field

from streamsense.schemas.catalog import Topic
from streamsense.services.settings import StreamsenseSettings

#: TextEvent.text holds at most 65,536 characters; a longer line is truncated to this many bytes.
MAX_TEXT_BYTES = 65_536


class CameraProducerSettings(StreamsenseSettings):
    """``streamsense produce camera``: one camera (or file, folder) to ``frames``."""

    service_name: str = "producer-camera"
    """name in logs and metrics, and the Kafka client id"""
    camera_topic: str = Field(default=Topic.FRAMES, description="logical topic (prefix is added)")
    camera_fps: float | None = Field(
        default=None, gt=0, le=1000, description="target rate; default: the source's own pace"
    )
    camera_default_fps: float = Field(
        default=10.0, gt=0, le=1000, description="image folders, files that state no rate"
    )
    camera_width: int | None = Field(default=None, ge=16, le=16384, description="resize width")
    camera_jpeg_quality: int = Field(default=80, ge=1, le=100)
    """JPEG quality of the frames sent (1-100; also `--jpeg-quality`)"""
    camera_loop: bool = False
    """start a file or folder over at its end (also `--loop`)"""
    camera_max_frames: int | None = Field(default=None, ge=1)
    """stop after this many frames (also `--max-frames`)"""
    camera_max_in_flight: int = Field(default=4, ge=1, le=10_000)
    """drop-oldest backpressure: frames handed to librdkafka at once"""
    camera_pending_limit: int = Field(default=2, ge=1, le=10_000)
    """drop-oldest backpressure: frames waiting locally; beyond them the oldest is dropped"""
    camera_linger_ms: float = Field(default=1.0, ge=0, le=1000)
    """1 ms keeps latency low; 5-10 ms batches frames above ~200 fps and cuts the broker's CPU per
    frame by a third to a half (measured), at that much added latency"""
    camera_reconnect_attempts: int = Field(default=10, ge=0, le=1_000_000)
    """a live source that is lost is tried again this many times before exit 3"""
    camera_reconnect_initial_s: float = Field(default=0.5, gt=0, le=60)
    """first wait before reconnecting a lost live source (s)"""
    camera_reconnect_max_s: float = Field(default=10.0, gt=0, le=600)
    """longest wait between reconnection attempts (s)"""
    camera_flush_timeout_s: float = Field(default=10.0, ge=0, le=600)
    """at exit, how long to wait for Kafka to acknowledge the last frames (s)"""
    camera_kafka_timeout_s: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="exit 1 when Kafka does not answer, or acknowledges nothing, for this long",
    )

    @property
    def topic_name(self) -> str:
        return self.topic(self.camera_topic)


class TextProducerSettings(StreamsenseSettings):
    """``streamsense produce text``: log files followed like ``tail -F`` (or stdin) to ``text``."""

    service_name: str = "producer-text"
    """name in logs and metrics, and the Kafka client id"""
    text_topic: str = Field(default=Topic.TEXT, description="logical topic (prefix is added)")
    text_max_line_bytes: int = Field(default=MAX_TEXT_BYTES, ge=16, le=MAX_TEXT_BYTES)
    """longer lines are truncated to this many bytes and flagged `truncated`"""
    text_checkpoint: Path | None = Field(
        default=None, description="default: <home>/checkpoints/text-<hash of the glob>.json"
    )
    text_poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    """fallback poll when no file-change notification arrives, e.g. network file systems (s)"""
    text_rotate_grace_s: float = Field(default=2.0, ge=0, le=3600)
    """how long a rotated-away or deleted file is still read before it is closed (s)"""
    text_checkpoint_interval_s: float = Field(default=0.5, ge=0, le=3600)
    """how often acknowledged positions are written to the checkpoint (s)"""
    text_max_in_flight: int = Field(default=1000, ge=1, le=1_000_000)
    """lines sent and not yet acknowledged; stdin is not read further until some are"""
    text_reconcile_scan: int = Field(default=2000, ge=0, le=10_000_000)
    """records read back per partition at start to find lines acknowledged after the checkpoint"""
    text_flush_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    """at exit, how long to wait for Kafka to acknowledge the last lines (s)"""
    text_kafka_timeout_s: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="exit 1 when Kafka does not answer, or acknowledges nothing, for this long",
    )

    @property
    def topic_name(self) -> str:
        return self.topic(self.text_topic)

    def checkpoint_path(self, pattern: str, source_id: str | None) -> Path:
        if self.text_checkpoint is not None:
            return self.text_checkpoint
        key = f"{Path(pattern).absolute()}|{source_id}|{self.topic_name}"
        tag = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self.home / "checkpoints" / f"text-{tag}.json"
