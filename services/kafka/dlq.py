"""Dead-letter routing: the original key and bytes to ``<topic>.dlq``, the reason in headers.

A dead letter always fits its topic. Its budget (:func:`~streamsense.services.kafka.topics.
dead_letter_budget`) is counted uncompressed, as librdkafka counts ``message.max.bytes``, and
each ``.dlq`` topic holds more than that (see ``topics.DLQ_HEADROOM`` for why whatever codec the
original was sent with cannot matter). A record that does not fit its budget, e.g. 2 MB of text a
user's producer squeezed under the text topic's 1 MB with zstd, keeps a prefix of its value, its
key cut to 4 KiB and its headers up to 64 KiB, plus ``dlq-payload-truncated``,
``dlq-original-size`` and ``dlq-original-sha256`` (of the whole value) so it can still be
identified. :meth:`DeadLetterRouter.send` never raises for a record's size.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message

from streamsense.schemas.catalog import dlq_topic
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.services.kafka.headers import readable_headers
from streamsense.services.kafka.producer import DeliveryCallback, Producer
from streamsense.services.kafka.topics import catalogue_spec, dead_letter_budget
from streamsense.services.observability import metrics

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]

#: What a cut record keeps of its key and of its original headers.
KEY_KEEP = 4096
HEADERS_KEEP = 64 * 1024
#: librdkafka's header framing is two varints of at most 5 bytes each.
_HEADER_FRAMING = 10


def where(msg: Message) -> str:
    """``topic[partition]@offset``: how every log line names a message."""
    return f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: Headers
    info: DeadLetterInfo


def record_size(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> int:
    """A record's size as librdkafka checks it against ``message.max.bytes`` (an upper bound)."""
    size = len(key or b"") + len(value or b"")
    return size + sum(len(k.encode()) + len(v) + _HEADER_FRAMING for k, v in headers)


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def dead_letter(
    key: bytes | str | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | str | None]],
    info: DeadLetterInfo,
    budget: int,
) -> DeadLetter:
    """The dead letter of a record: whole when it fits ``budget``, else cut (see module doc)."""
    k = _as_bytes(key)
    original: Headers = [(n, b) for n, v in headers if (b := _as_bytes(v)) is not None]
    whole = [*original, *info.to_kafka_headers()]
    if record_size(k, value, whole) <= budget:
        return DeadLetter(k, value, whole, info)
    kept: Headers = []
    room = min(HEADERS_KEEP, budget // 4)
    for name, v in original:
        size = record_size(None, None, [(name, v)])
        if size > room:
            break
        kept.append((name, v))
        room -= size
    cut_key = k[:KEY_KEEP] if k is not None else None
    data = value or b""
    info = info.model_copy(
        update={
            "payload_truncated": True,
            "original_size": len(data),
            "original_sha256": hashlib.sha256(data).hexdigest(),
            "original_key_size": len(k) if k is not None and len(k) > KEY_KEEP else None,
            "headers_dropped": len(original) - len(kept),
        }
    )
    fixed = [*kept, *info.to_kafka_headers()]
    room = budget - record_size(cut_key, None, fixed)
    return DeadLetter(cut_key, data[: max(0, room)], fixed, info)


class DeadLetterRouter:
    """Produces dead letters with the producer it is given (the loop's own, so a dead letter
    can join the batch's transaction). ``topic_prefix`` names the deployment's prefix, which
    picks each source topic's budget exactly; without it the longest catalogue name a topic
    ends with is used."""

    def __init__(self, producer: Producer, service: str, topic_prefix: str | None = None) -> None:
        self._producer = producer
        self._service = service
        self._prefix = topic_prefix
        self._outputs: dict[str, int | None] = {}
        self.sent = 0
        self.truncated = 0

    def output_budget(self, topic: str) -> int | None:
        """The largest record (key + value + headers, uncompressed) a catalogue ``topic``
        accepts, or None for a topic outside the catalogue (the broker's limit decides)."""
        if topic not in self._outputs:
            known = catalogue_spec(topic, self._prefix) is not None
            self._outputs[topic] = dead_letter_budget(topic, self._prefix) if known else None
        return self._outputs[topic]

    @staticmethod
    def topic_for(topic: str) -> str:
        """Where dead letters of ``topic`` go."""
        return dlq_topic(topic)

    def send(
        self, msg: Message, error: BaseException, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Route ``msg`` to its dead-letter topic, keeping its key, value and headers (cut to
        the topic's budget when they do not fit)."""
        topic = str(msg.topic())
        info = DeadLetterInfo.describe(
            error,
            topic=topic,
            partition=int(msg.partition() or 0),
            offset=int(msg.offset() or 0),
            service=self._service,
        )
        original, readable = readable_headers(msg)
        if not readable:  # a header key that is not UTF-8: none can be copied, the letter says so
            info = info.model_copy(update={"headers_unreadable": True})
        headers = [(str(k), v) for k, v in original if isinstance(v, bytes | str)]
        letter = dead_letter(msg.key(), msg.value(), headers, info, self._budget(topic))
        target = dlq_topic(topic)
        log.warning("%s -> %s: %s: %s", where(msg), target, info.error_class, info.error_message)
        metrics.DLQ_TOTAL.labels(self._service, topic, info.error_class).inc()
        self.sent += 1
        try:
            self._produce(target, letter, on_delivery)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            # librdkafka's message.max.bytes was set below the budget (kafka_extra): keep the
            # reason and the identification, no payload
            log.warning("%s: dead letter over librdkafka's message.max.bytes; sent without "
                        "its payload", where(msg))  # fmt: skip
            letter = dead_letter(msg.key(), msg.value(), headers, info, 0)
            self._produce(target, letter, on_delivery)

    def _budget(self, topic: str) -> int:
        return dead_letter_budget(topic, self._prefix)

    def _produce(
        self, target: str, letter: DeadLetter, on_delivery: DeliveryCallback | None
    ) -> None:
        if letter.info.payload_truncated:
            self.truncated += 1
            log.warning("dead letter of %s[%d]@%d cut to %d of %s bytes (sha256 %s)",
                        letter.info.original_topic, letter.info.original_partition,
                        letter.info.original_offset, len(letter.value or b""),
                        letter.info.original_size, letter.info.original_sha256)  # fmt: skip
        self._producer.produce(
            target, letter.value, key=letter.key, headers=letter.headers, on_delivery=on_delivery
        )
