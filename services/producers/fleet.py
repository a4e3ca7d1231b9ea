"""Many cameras in one process: a reader thread per camera, a small shared encoder pool, one
Kafka client, and each camera's status on ``cameras.status``.

Threads: one reader per camera (OpenCV's reads block, up to the read timeout), the
``camera_encoders`` encoder threads, librdkafka's own few, and the caller's thread, which
serves delivery reports, watches Kafka and publishes statuses. ``produce camera`` runs a fleet
of one, so a single camera behaves exactly as each camera of a fleet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from streamsense.services.kafka.producer import BackpressurePolicy, Producer
from streamsense.services.producers.base import FrameSource
from streamsense.services.producers.camera_state import Camera
from streamsense.services.producers.exceptions import KafkaUnavailableError
from streamsense.services.producers.kafka_watch import KafkaWatch
from streamsense.services.producers.reader import CameraReader
from streamsense.services.producers.sender import FrameSender
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.producers.sources import open_source
from streamsense.services.producers.spec import CameraSpec
from streamsense.services.producers.status import StatusPublisher, totals

log = logging.getLogger(__name__)

#: How often the caller's thread serves delivery reports and looks at the cameras (s).
TICK_S = 0.01


class CameraFleet:
    def __init__(
        self,
        settings: CameraProducerSettings,
        specs: Sequence[CameraSpec],
        *,
        sources: Mapping[str, FrameSource] | None = None,
        stop: threading.Event | None = None,
        pace: bool = True,
        kafka_config: dict[str, Any] | None = None,
    ) -> None:
        """``sources``: sources already built (and maybe opened) by camera id; the others are
        built from their spec here."""
        self.settings = settings
        self.stop_event = stop or threading.Event()
        self.watch = KafkaWatch(settings.kafka_bootstrap, settings.camera_kafka_timeout_s)
        given = sources or {}
        self.cameras = [Camera(s, given.get(s.camera_id) or self._source(s)) for s in specs]
        per_camera = settings.camera_max_in_flight
        self.producer = Producer(
            settings,
            policy=BackpressurePolicy.BLOCK,
            # the gates hold each camera to ``per_camera`` frames and one status: never reached
            max_in_flight=len(self.cameras) * (per_camera + 1) + 1,
            compression="none",  # JPEG does not compress
            linger_ms=settings.camera_linger_ms,
            config={**self.watch.client_config(), **(kafka_config or {})},
        )
        self.sender = FrameSender(self.producer, settings.topic_name, self.cameras,
                                  settings.camera_encoders, per_camera,
                                  settings.camera_pending_limit)  # fmt: skip
        self.status = StatusPublisher(
            self.sender,
            settings.status_topic_name,
            settings.camera_status_interval_s,
            settings.service_name,
        )
        self.readers = [CameraReader(c, self.stop_event, pace) for c in self.cameras]
        self.kafka_error: KafkaUnavailableError | None = None
        #: the run ended on a stop request (SIGTERM), not because every camera ended
        self.stop_requested = False

    def _source(self, spec: CameraSpec) -> FrameSource:
        return open_source(spec.source, open_timeout_s=spec.open_timeout_s,
                           read_timeout_s=spec.read_timeout_s,
                           decode_threads=self.settings.camera_decode_threads)  # fmt: skip

    # -- observability ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, int | float | str]:
        return totals(self.cameras)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Green while some camera is online (or every camera ended on its own), Kafka answers
        and no camera's newest frame failed; one camera down is in its own state, not a reason
        to restart the others. A camera whose frames Kafka refuses (a topic's size limit, its
        authorization) reads on and is ``online``, but nothing arrives: that is red, with why.
        """
        online = any(c.state == "online" for c in self.cameras)
        ended = all(c.finished and c.error is None for c in self.cameras)
        failing = {c.camera_id: c.failing for c in self.cameras if c.failing}
        ok = (online or ended) and self.kafka_error is None and not failing
        cams = {c.camera_id: {"state": c.state, "reason": c.reason, "failing": c.failing,
                              **c.snapshot()} for c in self.cameras}  # fmt: skip
        return ok, {"kafka_error": str(self.kafka_error or "") or None,
                    "failing": failing or None, "cameras": cams}  # fmt: skip

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> None:
        """Until every camera's reader ended (sources ended, given up) or ``stop``; then the
        frames handed over are sent and flushed and every camera is published ``offline``.
        KafkaUnavailableError when Kafka acknowledges nothing for ``camera_kafka_timeout_s``."""
        threads = [threading.Thread(target=r.run, name=f"camera-{r.camera.camera_id}"[:64],
                                    daemon=True) for r in self.readers]  # fmt: skip
        self.sender.start()
        for t in threads:
            t.start()
        try:
            while not self.stop_event.is_set() and any(t.is_alive() for t in threads):
                self.sender.poll()
                with self.sender.lock:
                    self.watch.check(self.producer)
                self.status.tick()
                self.stop_event.wait(TICK_S)
        except KafkaUnavailableError as exc:
            self.kafka_error = exc
        finally:
            self._finish(threads)
        if self.kafka_error is not None:  # counted once the last frames were given up
            failed = sum(c.stats.failed for c in self.cameras)
            msg = (
                f"{self.kafka_error}: {failed} frame(s) handed to Kafka were not acknowledged "
                "(not written, or written without an answer); check the broker and "
                "STREAMSENSE_KAFKA_BOOTSTRAP, then start again"
            )
            raise KafkaUnavailableError(msg) from self.kafka_error

    def _finish(self, threads: list[threading.Thread]) -> None:
        s = self.settings
        self.stop_requested = self.stop_event.is_set()
        self.stop_event.set()
        longest = max((c.spec.read_timeout_s for c in self.cameras), default=0.0)
        for t in threads:  # a reader blocked in a stalled stream returns within its timeout
            t.join(longest + 1.0)
        flush_s = 1.0 if self.kafka_error is not None else s.camera_flush_timeout_s
        if not self.sender.drain(flush_s):
            log.error("frames handed to the encoders were not encoded in %.0f s", flush_s)
        deadline = time.monotonic() + flush_s
        self.sender.flush(max(0.0, deadline - time.monotonic()) / 2)  # statuses in flight too
        self.status.tick(final=True)  # every camera's last state: offline
        left = self.sender.flush(max(0.0, deadline - time.monotonic()))
        if left:
            log.error("%d frames not acknowledged at exit", left)
        self.producer.close(0)  # what is left is counted as failed; the client's threads end

    def lost(self) -> list[Camera]:
        """Cameras that ended on an error: a live source lost for good, a file or folder that
        could no longer be read (opened again to loop), a reader that failed. Only the first
        were counted before, so a fleet whose cameras all failed otherwise exited 0."""
        return [c for c in self.cameras if c.error is not None]
