"""Settings of the two producer services (``STREAMSENSE_CAMERA_*``, ``STREAMSENSE_TEXT_*`` and the
shared ``STREAMSENSE_*``). Command-line options override them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import Field, SecretStr

from streamsense.schemas.catalog import Topic
from streamsense.services.settings import StreamsenseSettings

#: TextEvent.text holds at most 65,536 characters; a longer line is truncated to this many bytes.
MAX_TEXT_BYTES = 65_536


class CameraProducerSettings(StreamsenseSettings):
    """``streamsense produce camera`` (one camera, file or folder) and ``produce cameras`` (a
    fleet file; its cameras' own values come first) to ``frames``."""

    service_name: str = "producer-camera"
    """name in logs and metrics, and the Kafka client id"""
    camera_topic: str = Field(default=Topic.FRAMES, description="logical topic (prefix is added)")
    camera_source: SecretStr | None = None
    """`produce camera`'s source when `--source` is not given: for a URL with a password or a
    token, which on the command line every user of the machine reads in `ps`"""
    camera_status_topic: str | None = Field(
        default=Topic.CAMERAS_STATUS,
        description="logical topic of the cameras' states (compacted; prefix is added); "
        "empty: publish none",
    )
    camera_status_interval_s: float = Field(default=2.0, ge=0.1, le=3600)
    """each camera's status is published when its state changes and at least this often (s)"""
    camera_encoders: int = Field(default=2, ge=1, le=64)
    """threads that resize, JPEG-encode and produce, shared by all cameras of the process"""
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
    """`produce camera`: a lost live source is tried again this many times before exit 3 (a
    fleet's cameras are tried until stopped unless their file sets `reconnect.attempts`)"""
    camera_reconnect_initial_s: float = Field(default=0.5, gt=0, le=60)
    """first wait before reconnecting a lost live source (s)"""
    camera_reconnect_max_s: float = Field(default=2.0, gt=0, le=600)
    """longest wait between reconnection attempts (s): the waits double up to it, so a
    camera that comes back is found within this long (plus the time to open it)"""
    camera_open_timeout_s: float = Field(default=5.0, gt=0, le=300)
    """streams: how long opening may take before the attempt fails (s)"""
    camera_read_timeout_s: float = Field(default=5.0, gt=0, le=300)
    """streams: a source that delivers no frame for this long is lost (a stalled server) (s)"""
    camera_decode_threads: int = Field(default=1, ge=0, le=64)
    """FFmpeg decoding threads per video file or stream (0: one per core). One keeps a fleet at
    one thread per camera (FFmpeg's default started three per camera here, for the same CPU),
    and frame-threaded decoding holds back a frame per extra thread, which a live camera feels"""
    camera_ffmpeg_options: str = Field(
        default="rtsp_transport;tcp|analyzeduration;500000",
        max_length=4096,
        description="FFmpeg demuxer options for streams (`key;value|key;value`, OpenCV's "
        "OPENCV_FFMPEG_CAPTURE_OPTIONS): RTSP over TCP (no lost packets, no torn JPEGs), and "
        "0.5 s of probing instead of FFmpeg's 5 s, which delayed every (re)connection by ~2 s",
    )
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

    @property
    def status_topic_name(self) -> str | None:
        return self.topic(self.camera_status_topic) if self.camera_status_topic else None

    def apply_ffmpeg_options(self) -> None:
        """Hand :attr:`camera_ffmpeg_options` to OpenCV, which reads the variable at each open.
        Call it before reader threads start: changing the environment while another thread
        reads it is unsafe in C."""
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = self.camera_ffmpeg_options


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
    text_linger_ms: float = Field(default=1.0, ge=0, le=1000)
    """how long a line waits for others to share its request (ms) while more input is waiting
    to be read (see STREAMSENSE_TEXT_SEND_WHEN_IDLE); a busy log is batched anyway while
    requests are in flight"""
    text_send_when_idle: bool = True
    """when nothing more is there to read, send the lines read at once instead of letting them
    linger (a quiet log's line reaches Kafka ~1 ms sooner; a busy one is still batched)"""
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
