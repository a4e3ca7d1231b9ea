"""The camera producer: read -> pace -> resize -> JPEG -> ``frames``, newest frame wins.

:class:`CameraProducer` is one camera: a :class:`~streamsense.services.producers.fleet.CameraFleet`
of one, so ``produce camera`` and each camera of ``produce cameras`` share every part (reader
thread, encoders, drop-oldest gate, reconnection, status, metrics). When Kafka falls behind, at
most ``camera_max_in_flight`` frames are in librdkafka and ``camera_pending_limit`` wait; the
oldest waiting frame is dropped (``dropped``, ``streamsense_producer_dropped``), so consumers
always see recent frames. A lost live source is reopened with a capped backoff; a finite one
ends (or starts over with ``loop``).
"""

from __future__ import annotations

import threading
from typing import Any

from streamsense.services.kafka.producer import Producer
from streamsense.services.producers.base import FrameSource
from streamsense.services.producers.camera_state import Camera, CameraStats
from streamsense.services.producers.fleet import CameraFleet
from streamsense.services.producers.kafka_watch import KafkaWatch
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.producers.spec import CameraSpec

__all__ = ["CameraProducer", "CameraStats"]


class CameraProducer:
    def __init__(
        self,
        settings: CameraProducerSettings,
        source: FrameSource,
        camera_id: str,
        *,
        stop: threading.Event | None = None,
        pace: bool = True,
        kafka_config: dict[str, Any] | None = None,
    ) -> None:
        spec = CameraSpec.from_settings(settings, camera_id, source.description)
        self.settings = settings
        self.source = source
        self.camera_id = camera_id
        self.topic = settings.topic_name
        self.fleet = CameraFleet(settings, [spec], sources={camera_id: source}, stop=stop,
                                 pace=pace, kafka_config=kafka_config)  # fmt: skip
        self.camera: Camera = self.fleet.cameras[0]
        self.stats: CameraStats = self.camera.stats
        self.stop_event = self.fleet.stop_event

    @property
    def producer(self) -> Producer:
        return self.fleet.producer

    @property
    def watch(self) -> KafkaWatch:
        return self.fleet.watch

    @property
    def seq(self) -> int:
        """The next frame's sequence number (= frames sent so far)."""
        return self.camera.seq

    def snapshot(self) -> dict[str, int | float | str]:
        """Counters for the live view and ``/healthz``."""
        return self.camera.snapshot()

    def health(self) -> tuple[bool, dict[str, Any]]:
        cam = self.camera
        return cam.state == "online" and not cam.failing, {
            "source": self.source.description, "reason": cam.reason, "failing": cam.failing,
            **cam.snapshot(),
        }  # fmt: skip

    def run(self) -> CameraStats:
        """Produce until the source ends, ``camera_max_frames`` or ``stop``; then flush.
        KafkaUnavailableError when Kafka acknowledges nothing for ``camera_kafka_timeout_s``;
        the source's error (SourceLostError: lost and not back) when it failed."""
        self.fleet.run()
        if self.camera.error is not None:
            raise self.camera.error
        return self.stats
