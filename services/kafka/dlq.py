"""Dead-letter routing: the original key and bytes to ``<topic>.dlq``, the reason in headers."""

from __future__ import annotations

import logging

from confluent_kafka import Message

from streamsense.schemas.catalog import dlq_topic
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.services.kafka.producer import DeliveryCallback, Producer
from streamsense.services.observability import metrics

log = logging.getLogger(__name__)


def where(msg: Message) -> str:
    """``topic[partition]@offset``: how every log line names a message."""
    return f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"


class DeadLetterRouter:
    def __init__(self, producer: Producer, service: str) -> None:
        self._producer = producer
        self._service = service
        self.sent = 0

    @staticmethod
    def topic_for(topic: str) -> str:
        """Where dead letters of ``topic`` go."""
        return dlq_topic(topic)

    def send(
        self, msg: Message, error: BaseException, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Route ``msg`` to its dead-letter topic, keeping its key, value and headers."""
        topic = str(msg.topic())
        info = DeadLetterInfo.describe(
            error,
            topic=topic,
            partition=int(msg.partition() or 0),
            offset=int(msg.offset() or 0),
            service=self._service,
        )
        headers: list[tuple[str, bytes | str]] = [
            (str(k), v) for k, v in list(msg.headers() or []) if isinstance(v, bytes | str)
        ]
        headers.extend(info.to_kafka_headers())
        log.warning(
            "%s -> %s: %s: %s", where(msg), dlq_topic(topic), info.error_class, info.error_message
        )
        metrics.DLQ_TOTAL.labels(self._service, topic, info.error_class).inc()
        self.sent += 1
        self._producer.produce(
            dlq_topic(topic), msg.value(), key=msg.key(), headers=headers, on_delivery=on_delivery
        )
