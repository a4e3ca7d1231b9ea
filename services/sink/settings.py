"""Settings of the Redis sink (``STREAMSENSE_SINK_*``, plus the shared ``STREAMSENSE_*`` ones)."""

from __future__ import annotations

from pydantic import Field

from streamsense.services.serving.keys import RedisKeys
from streamsense.services.serving.writes import LayoutWriter
from streamsense.services.settings import StreamsenseSettings


class SinkSettings(StreamsenseSettings):
    service_name: str = "sink-redis"
    """name in logs and metrics, and the Kafka client id"""

    sink_group: str | None = Field(
        default=None, description="consumer group (default <topic prefix>streamsense-sink-redis)"
    )

    @property
    def group_id(self) -> str:
        return self.sink_group or self.group("sink-redis")

    sink_max_batch: int = Field(default=500, ge=1, le=10_000)
    """most records per Redis transaction"""
    sink_max_wait_ms: int = Field(default=5, ge=0, le=10_000)
    """how long to wait to fill a batch (ms)"""
    sink_stream_maxlen: int = Field(
        default=1000, ge=1, description="approximate history per source"
    )
    sink_thumbnails: bool = Field(default=True, description="consume frames for camera thumbnails")
    sink_thumb_width: int = Field(default=320, ge=16, le=4096)
    """camera thumbnails are scaled to this width (pixels)"""
    sink_thumb_quality: int = Field(default=75, ge=10, le=100)
    """JPEG quality of the thumbnails"""
    sink_source_ttl_s: int = Field(
        default=7 * 86_400,
        ge=0,
        description="a source's results and listing entries, and a camera's status, go this"
        " long after the last one (0: never); bounds Redis when producers invent ids",
    )
    sink_thumb_ttl_s: int = Field(default=60, ge=1)
    """a camera's thumbnail expires this long after its last frame (s)"""
    sink_thumb_min_interval_ms: int = Field(
        default=200, ge=0, description="at most one thumbnail per camera in this interval"
    )
    sink_redis_timeout_s: float = Field(default=2.0, gt=0)
    """Redis connect and command timeout (s)"""
    sink_retry_cap_s: float = Field(default=5.0, gt=0, description="longest wait between retries")

    def layout_writer(self) -> LayoutWriter:
        """The serving layer's writer with this sink's prefix, history length and TTLs."""
        return LayoutWriter(
            RedisKeys(self.redis_prefix),
            self.sink_stream_maxlen,
            self.sink_thumb_ttl_s,
            self.sink_source_ttl_s,
        )
