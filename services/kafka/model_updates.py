"""Reading and writing ``models.updates``: every service that follows or announces model
versions (workers, the learner, the rollout commands) goes through here.

The topic is compacted and keyed by model name, one partition. A follower reads it without a
consumer group (every replica must see every announcement), polled between batches, which
costs microseconds. Compaction keeps only the last record per model, so the model store's
champion pointer (not the topic) is where a service starts from; the topic tells running
services what changed.
"""

from __future__ import annotations

import logging
import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streamsense.schemas.catalog import Topic
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.registry import decode, encode
from streamsense.services.kafka.producer import Producer
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)


def groupless_consumer(settings: StreamsenseSettings, purpose: str) -> Consumer:
    """A consumer that is assigned partitions by hand and commits nothing (a reader)."""
    return Consumer(
        {
            **settings.librdkafka_config(),
            "group.id": f"{settings.service_name}-{purpose}-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
        }
    )


class ModelUpdatesFollower:
    """Non-blocking follower of one model's announcements.

    ``from_start`` reads what is on the topic already (a worker applies the newest champion
    it finds); otherwise only announcements made after it started count (the learner: what
    came before is history, and the store's champion pointer already says where to start).
    """

    def __init__(
        self,
        settings: StreamsenseSettings,
        name: str,
        *,
        from_start: bool,
        catch_up_s: float = 10.0,
    ) -> None:
        self.topic = settings.topic(Topic.MODEL_UPDATES)
        self.name = name
        self._key = name.encode()
        self._consumer = groupless_consumer(settings, "updates")
        start = 0
        if not from_start:
            try:
                _, start = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, 0), timeout=catch_up_s
                )
            except KafkaException as exc:
                log.warning("cannot read %s's end offset (%s): reading from the start",
                            self.topic, exc)  # fmt: skip
                start = 0
        self._consumer.assign([TopicPartition(self.topic, 0, int(start))])

    def poll(self) -> list[ModelVersion]:
        """Announcements of this model that arrived since the last call (oldest first)."""
        out = []
        for msg in self._consumer.consume(100, 0):
            if msg.error() is not None or msg.key() != self._key:
                continue
            try:
                out.append(decode(msg.value(), ModelVersion))
            except Exception as exc:  # a bad announcement must never stop a service
                log.error("ignoring bad record on %s@%s: %s", self.topic, msg.offset(), exc)
        return out

    def close(self) -> None:
        self._consumer.close()


def announce(
    producer: Producer,
    settings: StreamsenseSettings,
    mv: ModelVersion,
    *,
    wait_s: float | None = 15.0,
) -> None:
    """Produce ``mv`` on ``models.updates`` keyed by model name; with ``wait_s``, wait for the
    acknowledgement (KafkaIOError when it does not come)."""
    topic = settings.topic(Topic.MODEL_UPDATES)
    if wait_s is None:
        producer.produce(topic, encode(mv), key=mv.name)
    else:
        producer.send_and_wait(topic, encode(mv), mv.name, wait_s)
