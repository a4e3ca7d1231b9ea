"""Small helpers for integration tests: read a topic to the end, a group's committed offset, an
echo handler."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from streamsense.services.kafka.handler import BatchHandler, Outcome, OutRecord


def committed_offset(bootstrap: str, group: str, topic: str, partition: int = 0) -> int:
    """The offset ``group`` committed on ``topic[partition]`` (0: none yet; -1 while the
    coordinator does not answer, e.g. a fresh broker's is loading)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (tp,) = c.committed([TopicPartition(topic, partition)], timeout=10)
    except KafkaException:
        return -1
    finally:
        c.close()
    return max(int(tp.offset), 0)


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The offsets ``group`` committed on partitions ``0..partitions-1`` of ``topic``, summed
    (a partition without a commit counts 0)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offs = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        c.close()
    return sum(max(tp.offset, 0) for tp in offs)


def read_all(bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list[Message]:
    """Read ``topic`` from the beginning until ``expect`` messages arrived or ``timeout``."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for m in c.consume(500, 0.2):
                if m.error() is None:
                    out.append(m)
    finally:
        c.close()
    return out


class EchoHandler(BatchHandler[list[Message]]):
    """Upper-cases each value into ``out_topic``; values starting with b"bad" raise."""

    def __init__(self, out_topic: str, delay_s: float = 0.0) -> None:
        self.out_topic = out_topic
        self.delay_s = delay_s
        self.batches: list[int] = []

    def process(self, prepared: list[Message]) -> list[Outcome]:
        self.batches.append(len(prepared))
        if self.delay_s:
            time.sleep(self.delay_s)
        outcomes: list[Outcome] = []
        for m in prepared:
            value = m.value() or b""
            if value.startswith(b"bad"):
                outcomes.append(ValueError(f"cannot handle {value[:20]!r}"))
            else:
                outcomes.append(
                    [
                        OutRecord(
                            self.out_topic,
                            value.upper(),
                            key=m.key(),
                            headers=[("src-offset", str(m.offset()).encode())],
                        )
                    ]
                )
        return outcomes
