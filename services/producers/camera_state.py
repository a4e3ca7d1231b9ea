"""One camera at run time: its source, counters, state and the queues between its threads.

Who writes what: the reader thread (:mod:`~streamsense.services.producers.reader`) reads,
counts ``read/skipped/behind/reconnects/loops`` and moves the state; the encoder holding the
camera's claim numbers and counts ``sent/bytes``; the Kafka gate fields (``in_flight``,
``pending``, ``acked/dropped/failed``) change only under the sender's lock. Readers of the
counters (status, progress, health) tolerate a value one frame old.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from streamsense.schemas.cameras import CameraState
from streamsense.services.producers.base import FrameSource
from streamsense.services.producers.encode import FrameEncoder
from streamsense.services.producers.handoff import FrameSlot
from streamsense.services.producers.spec import CameraSpec

log = logging.getLogger(__name__)

STATES: tuple[CameraState, ...] = ("online", "reconnecting", "offline")


@dataclass
class CameraStats:
    read: int = 0
    sent: int = 0
    bytes: int = 0
    skipped: int = 0
    behind: int = 0
    dropped: int = 0
    acked: int = 0
    failed: int = 0
    reconnects: int = 0
    loops: int = 0


@dataclass(slots=True)
class PendingFrame:
    """An encoded frame waiting for room in librdkafka (drop-oldest)."""

    value: bytes
    headers: list[tuple[str, bytes]]
    seq: int


class Camera:
    def __init__(self, spec: CameraSpec, source: FrameSource) -> None:
        self.spec = spec
        self.camera_id = spec.camera_id
        self.source = source
        self.encoder = FrameEncoder(spec.width, spec.jpeg_quality)
        self.stats = CameraStats()
        self.slot = FrameSlot(lossless=not source.live)
        self.seq = 0
        self.last_frame_ns: int | None = None
        self.last_seq: int | None = None
        # the Kafka gate (under the sender's lock)
        self.in_flight = 0
        self.pending: deque[PendingFrame] = deque()
        # the state, and how the camera's reader ended
        self._lock = threading.Lock()
        self.state: CameraState = "reconnecting"
        self.since_ns = time.time_ns()
        self.reason: str | None = "not connected yet"
        # the first status waits for the reader's first open (or the first heartbeat), so a
        # dashboard does not see every camera "reconnecting" for the moment it takes to start
        self.changed = False
        self.error: BaseException | None = None
        self.finished = False
        #: the newest frame outcome was a failure (refused by Kafka, not encodable), and why:
        #: the camera reads but nothing arrives, so health is red until a frame is acknowledged
        self.failing: str | None = None

    @property
    def target_fps(self) -> float | None:
        """The configured rate; else a finite source's own (or the default); live: as it comes."""
        if self.spec.fps:
            return self.spec.fps
        if self.source.live:
            return None
        return self.source.fps or self.spec.default_fps

    def set_state(self, state: CameraState, reason: str | None = None) -> None:
        """Move to ``state`` (a status goes out at once); the same state only updates the
        reason, which the next periodic status carries."""
        with self._lock:
            if state == self.state:
                self.reason = reason
                return
            self.state, self.reason, self.since_ns = state, reason, time.time_ns()
            self.changed = True
        level = logging.INFO if state == "online" else logging.WARNING
        log.log(level, "camera %s: %s%s", self.camera_id, state, f" ({reason})" if reason else "")

    def take_changed(self) -> bool:
        with self._lock:
            changed, self.changed = self.changed, False
            return changed

    def snapshot(self) -> dict[str, int | float | str]:
        """Counters for the live view and health (``in_flight``: frames not acknowledged yet,
        waiting ones included)."""
        s = self.stats
        return {
            "state": self.state, "read": s.read, "sent": s.sent, "bytes": s.bytes,
            "skipped": s.skipped, "behind": s.behind, "acked": s.acked, "dropped": s.dropped,
            "failed": s.failed, "in_flight": self.in_flight + len(self.pending),
            "reconnects": s.reconnects, "loops": s.loops,
        }  # fmt: skip
