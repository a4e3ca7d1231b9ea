"""Camera states on the compacted ``cameras.status`` topic (key: the camera id).

A camera producer publishes its cameras' statuses when a state changes and every
``interval_s`` while it runs, so the newest record per key is the camera's state and a status
older than a few intervals means its producer is gone (killed, host down), whatever it says.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from streamsense.schemas.base import Message
from streamsense.schemas.fields import SourceId

#: ``online``: frames are flowing; ``reconnecting``: the source is lost (or not reached yet) and
#: tried again; ``offline``: not tried any more (given up, finite source ended, producer stopped).
CameraState = Literal["online", "reconnecting", "offline"]
#: A reader treats a status older than this many intervals as stale: its producer is gone.
STALE_AFTER_INTERVALS = 3


class CameraStatus(Message):
    SCHEMA = "streamsense.camera_status"
    VERSION = 1

    camera_id: SourceId
    state: CameraState
    since_ns: int = Field(ge=0, description="when the camera entered this state (ns, Unix epoch)")
    reason: str | None = Field(
        default=None, max_length=1024, description="why it is reconnecting or offline"
    )
    source: str = Field(
        max_length=1024, description="what the camera reads (a URL without its credentials)"
    )
    last_frame_ns: int | None = Field(
        default=None, ge=0, description="capture time of the last frame sent; null: none yet"
    )
    last_seq: int | None = Field(default=None, ge=0, description="seq of the last frame sent")
    fps: float = Field(ge=0, le=10_000, description="frames sent per second, last few seconds")
    target_fps: float | None = Field(
        default=None, gt=0, le=1000, description="the configured rate; null: the source's own"
    )
    frames_sent: int = Field(ge=0)
    frames_dropped: int = Field(
        ge=0, description="frames read but not delivered because encoding or Kafka was behind"
    )
    reconnects: int = Field(ge=0, description="times the source came back after being lost")
    updated_ns: int = Field(ge=0, description="when this status was made (ns, Unix epoch)")
    interval_s: float = Field(
        gt=0, le=3600, description="a running producer publishes at least this often"
    )
    producer: str = Field(min_length=1, max_length=256, description="the producing process")

    @model_validator(mode="after")
    def _consistent(self) -> CameraStatus:
        if self.since_ns > self.updated_ns:
            msg = "since_ns is later than updated_ns"
            raise ValueError(msg)
        if (self.last_seq is None) != (self.last_frame_ns is None):
            msg = "last_seq and last_frame_ns are both set or both null"
            raise ValueError(msg)
        return self

    def stale(self, now_ns: int) -> bool:
        """No status for :data:`STALE_AFTER_INTERVALS` intervals: the producer is gone."""
        return now_ns - self.updated_ns > STALE_AFTER_INTERVALS * self.interval_s * 1e9
