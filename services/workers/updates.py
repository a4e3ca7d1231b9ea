"""Follow ``models.updates`` and hot-swap the served model between batches.

The topic is compacted and keyed by model name, so reading it from the beginning gives the
current champion of every model. Each worker reads it without a consumer group (every replica
must see every announcement) and polls it between batches, which costs microseconds.
"""

from __future__ import annotations

import logging
import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.registry import decode, encode
from streamsense.services.kafka.producer import Producer
from streamsense.services.settings import StreamsenseSettings
from streamsense.services.workers.slot import ModelSlot

log = logging.getLogger(__name__)


class UpdateFollower:
    def __init__(self, settings: StreamsenseSettings, slot: ModelSlot, producer: Producer) -> None:
        self.topic = settings.topic("models.updates")
        self.slot = slot
        self.name = slot.current.name
        self._producer = producer
        self._consumer = Consumer(
            {
                **settings.librdkafka_config(),
                "group.id": f"{settings.service_name}-updates-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self._consumer.assign([TopicPartition(self.topic, 0, 0)])
        self.seen: list[ModelVersion] = []
        slot.on_rejected = self._announce_rejected

    def poll(self) -> None:
        """Apply announcements that arrived since the last call (non-blocking)."""
        for msg in self._consumer.consume(100, 0):
            if msg.error() is not None or msg.key() != self.name.encode():
                continue
            try:
                mv = decode(msg.value(), ModelVersion)
            except Exception as exc:  # a bad announcement must not stop serving
                log.error("ignoring bad record on %s@%s: %s", self.topic, msg.offset(), exc)
                continue
            self.seen.append(mv)
            if mv.stage == "champion" and (mv.name, mv.model_version) != self.slot.ref:
                log.info("models.updates: %s@%s is the new champion", mv.name, mv.model_version)
                self.slot.offer(mv.name, mv.model_version)

    def _announce_rejected(self, name: str, version: str, error: BaseException) -> None:
        """A version this worker could not load is announced as rejected, with the reason."""
        prev = next((m for m in reversed(self.seen) if m.model_version == version), None)
        if prev is None:
            return
        rejected = prev.model_copy(
            update={
                "stage": "rejected",
                "reason": f"{type(error).__name__}: {error}"[:500],
                "created_ns": time.time_ns(),
            }
        )
        self._producer.produce(self.topic, encode(rejected), key=name)

    def close(self) -> None:
        self._consumer.close()
