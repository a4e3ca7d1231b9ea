"""The encoder threads and the Kafka client that every camera of a process shares.

A small pool (``camera_encoders``, 2 by default) resizes, JPEG-encodes and produces the frames
that the cameras' reader threads hand over (:mod:`~streamsense.services.producers.handoff`):
OpenCV releases the GIL while it encodes, so two threads use two cores, and more threads than
cores would only contend. One librdkafka client serves the whole fleet (one set of broker
connections and threads, batches shared across cameras, one idempotent producer id).

Newest frame wins per camera: at most ``camera_max_in_flight`` frames of a camera are in
librdkafka and ``camera_pending_limit`` wait; when Kafka falls behind, the camera's oldest
waiting frame is dropped (``dropped``), so one camera's backlog never delays another's frames.

Our :class:`~streamsense.services.kafka.producer.Producer` is not thread-safe: every call into
it, and every gate, is under :attr:`FrameSender.lock`, held for microseconds (``produce`` and
``poll(0)`` do not wait; the gates keep the producer's own limit out of reach).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence

from confluent_kafka import KafkaError, Message

from streamsense.schemas.frames import FrameHeaders
from streamsense.services.kafka.producer import Producer
from streamsense.services.observability import metrics as core_metrics
from streamsense.services.producers.camera_state import Camera, PendingFrame
from streamsense.services.producers.handoff import RawFrame
from streamsense.services.producers.kafka_watch import refusal_hint

log = logging.getLogger(__name__)

#: Failed deliveries logged per camera: the first few, then one in this many (all are counted).
_LOG_FIRST, _LOG_EVERY = 3, 1000


class FrameSender:
    def __init__(
        self,
        producer: Producer,
        topic: str,
        cameras: Sequence[Camera],
        encoders: int,
        max_in_flight: int,
        pending_limit: int,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.cameras = list(cameras)
        self.max_in_flight = max_in_flight
        self.pending_limit = pending_limit
        self.lock = threading.Lock()
        self._ready: queue.SimpleQueue[Camera | None] = queue.SimpleQueue()
        self._dropped = core_metrics.PRODUCER_DROPPED.labels(producer.service, topic)
        for cam in self.cameras:
            cam.slot.ready = functools.partial(self._ready.put, cam)
        self._threads = [
            threading.Thread(target=self._work, name=f"encoder-{i}", daemon=True)
            for i in range(encoders)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    # -- encoder threads ----------------------------------------------------------------------

    def _work(self) -> None:
        while (cam := self._ready.get()) is not None:
            try:
                frame = cam.slot.take()
                if frame is not None:
                    self._send(cam, frame)
            except Exception as exc:  # a bad frame must not take the encoder down
                cam.stats.failed += 1
                cam.failing = f"frame not sent: {type(exc).__name__}: {exc}"
                n = cam.stats.failed  # a setting that fails every frame: not a flood of them
                if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
                    log.error("camera %s: frame not sent (#%d): %s: %s", cam.camera_id, n,
                              type(exc).__name__, exc, exc_info=n == 1)  # fmt: skip
            finally:
                cam.slot.release()

    def _send(self, cam: Camera, frame: RawFrame) -> None:
        data, width, height = cam.encoder.encode(frame.image)
        seq = cam.seq
        headers = FrameHeaders(camera_id=cam.camera_id, seq=seq, capture_ns=frame.capture_ns,
                               width=width, height=height, encoding="jpeg",
                               trace_id=uuid.uuid4().hex).to_kafka_headers()  # fmt: skip
        cam.seq += 1
        cam.stats.sent += 1
        cam.stats.bytes += len(data)
        cam.last_frame_ns, cam.last_seq = frame.capture_ns, seq
        with self.lock:  # behind older waiting frames, so the camera's frames stay in order
            if len(cam.pending) >= self.pending_limit:
                cam.pending.popleft()
                cam.stats.dropped += 1
                self._dropped.inc()
            cam.pending.append(PendingFrame(data, headers, seq))
            self._pump_camera(cam)

    # -- Kafka (callers hold the lock) --------------------------------------------------------

    def _produce(self, cam: Camera, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            cam.in_flight -= 1
            if err is None:
                cam.stats.acked += 1
                cam.failing = None
                self.producer.account(self.topic, 1)
            else:
                cam.stats.failed += 1
                cam.failing = f"frame not delivered to {self.topic}: {err.str()}{refusal_hint(err)}"
                self.producer.account(self.topic, 0, 1)
                n = cam.stats.failed  # a lost broker fails every frame in flight: not a flood
                if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
                    log.error("camera %s: frame not delivered to %s: %s (#%d)", cam.camera_id,
                              self.topic, err, n)  # fmt: skip

        self.producer.produce(self.topic, value, key=cam.camera_id, headers=headers,
                              on_delivery=delivered)  # fmt: skip
        cam.in_flight += 1

    def _pump_camera(self, cam: Camera) -> None:
        while cam.pending and cam.in_flight < self.max_in_flight:
            p = cam.pending.popleft()
            self._produce(cam, p.value, p.headers)

    def _pump(self) -> None:
        for cam in self.cameras:
            self._pump_camera(cam)

    def poll(self) -> None:
        """Serve delivery reports, then hand waiting frames over as room frees up."""
        with self.lock:
            self.producer.poll(0)
            self._pump()

    @property
    def undelivered(self) -> int:
        return sum(c.in_flight + len(c.pending) for c in self.cameras)

    # -- the end --------------------------------------------------------------------------------

    def drain(self, timeout: float) -> bool:
        """Let the encoders finish the frames handed over, then stop them; False when frames
        were still waiting after ``timeout`` (they are not sent)."""
        deadline = time.monotonic() + timeout
        while not all(c.slot.idle for c in self.cameras) and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.005)
        idle = all(c.slot.idle for c in self.cameras)
        for _ in self._threads:
            self._ready.put(None)
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return idle

    def flush(self, timeout: float) -> int:
        """Deliver every frame (waiting ones too) within ``timeout``; how many are left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                self._pump()
                left = self.undelivered + self.producer.in_flight
                if not left:
                    return 0
                self.producer.poll(0)
            time.sleep(0.005)
        with self.lock:
            return self.undelivered
