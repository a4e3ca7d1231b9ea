"""Each camera's state on the compacted ``cameras.status`` topic, and in its metrics.

A status goes out when a camera's state changes and every ``camera_status_interval_s`` while
the producer runs (a heartbeat: a status older than three intervals means the producer is
gone), and a last one, ``offline``, when it stops. At most one status per camera is in flight:
while Kafka is slow the newest one waits, so statuses never pile up behind frames.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence

from confluent_kafka import KafkaError, Message

from streamsense.schemas.cameras import CameraStatus
from streamsense.schemas.registry import encode
from streamsense.services.producers import metrics
from streamsense.services.producers.camera_state import STATES, Camera, CameraStats
from streamsense.services.producers.live import RateWindow
from streamsense.services.producers.sender import FrameSender

log = logging.getLogger(__name__)

#: Prometheus counters mirrored from the cameras' own (synced every tick, at most a second old).
_OUTCOMES = ("read", "sent", "acked", "skipped", "behind", "dropped", "failed")
_METRICS_EVERY_S = 1.0


def producer_name(service: str) -> str:
    return f"{service}@{socket.gethostname()}:{os.getpid()}"[:256]


class _CameraBook:
    """What the publisher remembers per camera: the rate window, what the metrics last saw,
    whether a status is in flight or due."""

    def __init__(self, service: str, cam: Camera) -> None:
        self.rates = RateWindow(window_s=5.0)
        self.fps = 0.0
        self.synced = CameraStats()
        self.in_flight = False
        self.due = False
        self.sent_at = time.monotonic()
        label = (service, cam.camera_id)
        self.frames = {o: metrics.CAMERA_FRAMES.labels(*label, o) for o in _OUTCOMES}
        self.reconnects = metrics.CAMERA_RECONNECTS.labels(*label)
        self.states = {s: metrics.CAMERA_STATE.labels(*label, s) for s in STATES}
        self.last_frame = metrics.CAMERA_LAST_FRAME.labels(*label)
        self.fps_gauge = metrics.CAMERA_FPS.labels(*label)


class StatusPublisher:
    def __init__(
        self,
        sender: FrameSender,
        topic: str | None,
        interval_s: float,
        service: str,
    ) -> None:
        self.sender = sender
        self.topic = topic
        self.interval_s = interval_s
        self.producer = producer_name(service)
        self.books = {c.camera_id: _CameraBook(service, c) for c in sender.cameras}
        self.published = 0
        self.failed = 0
        self._metrics_at = 0.0

    def tick(self, final: bool = False) -> None:
        """Sync metrics once a second; publish the statuses that are due (all when ``final``)."""
        now = time.monotonic()
        if final or now - self._metrics_at >= _METRICS_EVERY_S:
            self._metrics_at = now
            for cam in self.sender.cameras:
                self._sync(cam, self.books[cam.camera_id], now)
        if self.topic is None:
            return
        for cam in self.sender.cameras:
            book = self.books[cam.camera_id]
            if cam.take_changed() or final or now - book.sent_at >= self.interval_s:
                book.due = True
            if book.due and not book.in_flight:
                self._publish(cam, book, now)

    def status(self, cam: Camera) -> CameraStatus:
        now_ns = time.time_ns()
        s = cam.stats
        return CameraStatus(
            camera_id=cam.camera_id, state=cam.state, since_ns=min(cam.since_ns, now_ns),
            reason=cam.reason[:1024] if cam.reason else None,
            source=cam.source.description[:1024], last_frame_ns=cam.last_frame_ns,
            last_seq=cam.last_seq, fps=round(self.books[cam.camera_id].fps, 2),
            target_fps=cam.target_fps, frames_sent=s.sent, frames_dropped=s.behind + s.dropped,
            reconnects=s.reconnects, updated_ns=now_ns, interval_s=self.interval_s,
            producer=self.producer,
        )  # fmt: skip

    def _publish(self, cam: Camera, book: _CameraBook, now: float) -> None:
        assert self.topic is not None
        value = encode(self.status(cam))

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            book.in_flight = False
            if err is None:
                self.published += 1
                self.sender.producer.account(str(self.topic), 1)
            else:
                self.failed += 1
                self.sender.producer.account(str(self.topic), 0, 1)
                book.due = True  # the newest status goes again
                log.warning("camera %s: status not delivered: %s", cam.camera_id, err)

        with self.sender.lock:
            self.sender.producer.produce(self.topic, value, key=cam.camera_id,
                                         on_delivery=delivered)  # fmt: skip
        book.in_flight, book.due, book.sent_at = True, False, now

    def _sync(self, cam: Camera, book: _CameraBook, now: float) -> None:
        s, old = cam.stats, book.synced
        for outcome, counter in book.frames.items():
            if delta := getattr(s, outcome) - getattr(old, outcome):
                counter.inc(delta)
                setattr(old, outcome, getattr(old, outcome) + delta)
        if delta := s.reconnects - old.reconnects:
            book.reconnects.inc(delta)
            old.reconnects += delta
        for state, gauge in book.states.items():
            gauge.set(1 if cam.state == state else 0)
        if cam.last_frame_ns is not None:
            book.last_frame.set(cam.last_frame_ns / 1e9)
        book.fps = book.rates.update(now, {"sent": s.sent}).get("sent", 0.0)
        book.fps_gauge.set(book.fps)


def totals(cameras: Sequence[Camera]) -> dict[str, int | float | str]:
    """The fleet's counters summed, and how many cameras are in each state."""
    out: dict[str, int | float | str] = {}
    for cam in cameras:
        for k, v in cam.snapshot().items():
            if isinstance(v, int):
                out[k] = int(out.get(k, 0)) + v
    for state in STATES:
        out[state] = sum(c.state == state for c in cameras)
    return out
