"""Per-camera metrics of the camera producers, labeled by ``service`` and ``camera``.

The ``camera`` label is bounded: its values are the ids of a fleet file (at most
:data:`~streamsense.services.producers.fleet_config.MAX_CAMERAS`) or the one ``--camera-id``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CAMERA_FRAMES = Counter(
    "streamsense_camera_frames",
    "Frames of a camera by outcome: read, sent (encoded and handed to Kafka), acked, skipped "
    "(thinned to the target fps), behind (replaced before an encoder was free), dropped "
    "(drop-oldest while Kafka was behind), failed",
    ["service", "camera", "outcome"],
)
CAMERA_RECONNECTS = Counter(
    "streamsense_camera_reconnects", "Times a lost source came back", ["service", "camera"]
)
CAMERA_STATE = Gauge(
    "streamsense_camera_state",
    "1 for the camera's current state (online, reconnecting, offline), 0 for the others",
    ["service", "camera", "state"],
)
CAMERA_LAST_FRAME = Gauge(
    "streamsense_camera_last_frame_timestamp_seconds",
    "Capture time of the camera's last frame sent (Unix seconds)",
    ["service", "camera"],
)
CAMERA_FPS = Gauge(
    "streamsense_camera_fps", "Frames sent per second over the last seconds", ["service", "camera"]
)
FILES_REFUSED = Counter(
    "streamsense_camera_files_refused",
    "Entries of image folders and globs not read: symlink (links are not followed) or "
    "not_regular (a FIFO, a device, a socket); listed before a camera owns them, so unlabeled",
    ["reason"],
)
