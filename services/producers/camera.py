"""The camera producer: read -> pace -> resize -> JPEG -> ``frames``, newest frame wins.

Frames go through a drop-oldest :class:`~streamsense.services.kafka.producer.Producer`: at most
``camera_max_in_flight`` frames are in librdkafka and ``camera_pending_limit`` wait locally; when
Kafka falls behind the oldest waiting frame is dropped (counted in
``streamsense_producer_dropped``), so consumers always see recent frames. A live source that is
lost is reopened with exponential backoff; a finite one ends (or starts over with ``loop``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from streamsense.schemas.frames import FrameHeaders
from streamsense.services.kafka.producer import BackpressurePolicy, Producer
from streamsense.services.producers.base import FrameSource, Image
from streamsense.services.producers.encode import FrameEncoder
from streamsense.services.producers.exceptions import (
    KafkaUnavailableError,
    SourceError,
    SourceLostError,
)
from streamsense.services.producers.kafka_watch import KafkaWatch
from streamsense.services.producers.pacing import Pacer
from streamsense.services.producers.settings import CameraProducerSettings

log = logging.getLogger(__name__)


@dataclass
class CameraStats:
    read: int = 0
    sent: int = 0
    bytes: int = 0
    skipped: int = 0
    reconnects: int = 0
    loops: int = 0


def frame_producer(settings: CameraProducerSettings, watch: KafkaWatch | None = None) -> Producer:
    """Drop-oldest, tiny queues, no compression (JPEG does not compress), 1 ms linger."""
    return Producer(
        settings,
        policy=BackpressurePolicy.DROP_OLDEST,
        max_in_flight=settings.camera_max_in_flight,
        pending_limit=settings.camera_pending_limit,
        compression="none",
        linger_ms=settings.camera_linger_ms,
        config=watch.client_config() if watch is not None else None,
    )


class CameraProducer:
    def __init__(
        self,
        settings: CameraProducerSettings,
        source: FrameSource,
        camera_id: str,
        *,
        producer: Producer | None = None,
        stop: threading.Event | None = None,
        pace: bool = True,
    ) -> None:
        self.settings = settings
        self.source = source
        self.camera_id = camera_id
        self.topic = settings.topic_name
        self.encoder = FrameEncoder(settings.camera_width, settings.camera_jpeg_quality)
        self.watch = KafkaWatch(settings.kafka_bootstrap, settings.camera_kafka_timeout_s)
        self.producer = producer or frame_producer(settings, self.watch)
        self.stop_event = stop or threading.Event()
        self.pace = pace
        self.stats = CameraStats()
        self.seq = 0
        self.connected = False

    # -- observability ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, int | float | str]:
        """Counters for the live view and ``/healthz``."""
        p = self.producer
        return {**asdict(self.stats), "acked": p.acked, "dropped": p.dropped, "failed": p.failed,
                "in_flight": p.in_flight + p.waiting}  # fmt: skip

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.connected, {"source": self.source.description, **self.snapshot()}

    # -- the loop -----------------------------------------------------------------------------

    def target_fps(self) -> float | None:
        """``camera_fps``, else a finite source's own rate (or the default); live: as it comes."""
        if self.settings.camera_fps:
            return self.settings.camera_fps
        if self.source.live:
            return None
        return self.source.fps or self.settings.camera_default_fps

    def run(self) -> CameraStats:
        """Produce until the source ends, ``camera_max_frames`` or ``stop``; then flush.
        KafkaUnavailableError when Kafka acknowledges nothing for ``camera_kafka_timeout_s``."""
        if not self.source.is_open:
            self.source.open()  # an unreadable source fails here, before anything is sent
        self.connected = True
        fps = self.target_fps() if self.pace else None
        pacer = Pacer(fps)
        pace = f"{fps:g} fps" if fps else "source pace" if self.source.live else "full speed"
        log.info("camera %s: %s -> %s at %s", self.camera_id, self.source.description,
                 self.topic, pace)  # fmt: skip
        limit = self.settings.camera_max_frames
        unavailable = False
        try:
            while not self.stop_event.is_set() and (limit is None or self.seq < limit):
                if not self.source.live:
                    pacer.wait(self.stop_event)
                    if self.stop_event.is_set():
                        break
                image = self.source.read()
                if image is None:
                    if not self._source_ended():
                        break
                    continue
                self.stats.read += 1
                if self.source.live and not pacer.take():
                    self.stats.skipped += 1
                    continue
                self._send(image)
                self.producer.poll(0)
                self.watch.check(self.producer)
        except KafkaUnavailableError:
            unavailable = True
            raise
        finally:
            self.source.close()
            self.connected = False
            left = self.producer.flush(1.0 if unavailable else self.settings.camera_flush_timeout_s)
            if left:
                log.error("camera %s: %d frames not acknowledged at exit", self.camera_id, left)
        return self.stats

    def _send(self, image: Image) -> None:
        capture_ns = time.time_ns()
        data, width, height = self.encoder.encode(image)
        headers = FrameHeaders(camera_id=self.camera_id, seq=self.seq, capture_ns=capture_ns,
                               width=width, height=height, encoding="jpeg",
                               trace_id=uuid.uuid4().hex).to_kafka_headers()  # fmt: skip
        self.producer.produce(self.topic, data, key=self.camera_id, headers=headers)
        self.seq += 1
        self.stats.sent += 1
        self.stats.bytes += len(data)

    def _source_ended(self) -> bool:
        """Handle the end of the source; ``False`` means stop the loop."""
        if self.source.live:
            self._reconnect()
            return not self.stop_event.is_set()
        if self.settings.camera_loop:
            self.source.close()
            self.source.open()
            self.stats.loops += 1
            return True
        return False

    # -- reconnect ----------------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        """Back off while serving delivery callbacks; a stop request cuts the wait short."""
        deadline = time.monotonic() + seconds
        while not self.stop_event.is_set() and (left := deadline - time.monotonic()) > 0:
            self.producer.poll(min(0.1, left))

    def _reconnect(self) -> None:
        self.connected = False
        self.source.close()
        s = self.settings
        attempts = s.camera_reconnect_attempts
        log.warning("camera %s: %s lost, reconnecting (up to %d attempts)", self.camera_id,
                    self.source.description, attempts)  # fmt: skip
        if attempts == 0:
            msg = f"{self.source.description} was lost (reconnect attempts: 0)"
            raise SourceLostError(msg)

        def _log_retry(state: RetryCallState) -> None:
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("camera %s: reconnect %d/%d failed (%s); next try in %.1f s",
                        self.camera_id, state.attempt_number, attempts,
                        state.outcome.exception() if state.outcome else "?", wait)  # fmt: skip

        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(
                multiplier=s.camera_reconnect_initial_s, max=s.camera_reconnect_max_s
            ),  # fmt: skip
            retry=retry_if_exception_type(SourceError),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if self.stop_event.is_set():
                        return
                    self.source.open()
        except SourceError as exc:
            msg = f"{self.source.description} lost and not back after {attempts} attempts: {exc}"
            raise SourceLostError(msg) from exc
        if not self.stop_event.is_set():
            self.connected = True
            self.stats.reconnects += 1
            log.info("camera %s: %s is back", self.camera_id, self.source.description)
