"""A record the consumer cannot read (a zstd bomb past ``receive.message.max.bytes``) is
dead-lettered with the reason and the partition reads on; it used to stall the partition for
ever behind a green health check, logging the same error several times a second."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition
from confluent_kafka import Producer as RawProducer

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.unreadable import UnreadableRecords
from streamsense.services.runner import running
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.kafka_helpers import EchoHandler, committed_offset, read_all

#: the consumer's limits in the test: a record decompressing past 2 MB cannot be read
LIMITS = {"fetch.max.bytes": 1_000_000, "receive.message.max.bytes": 2_000_000}
BOMB = b"\0" * 20_000_000  # ~1 KB on the wire with zstd


@pytest.mark.integration
@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_a_decompression_bomb_is_dead_lettered_and_the_partition_reads_on(
    settings: StreamsenseSettings,
    make_topic: Callable[..., str],
    group_id: str,
    delivery: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    src, out = make_topic("in"), make_topic("out")
    # a hostile client: its own message.max.bytes, zstd; the broker checks only the
    # compressed size against the topic's limit
    p = RawProducer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "compression.type": "zstd",
            "message.max.bytes": 50_000_000,
        }
    )
    for value in (b"before", BOMB, b"after"):
        p.produce(src, value, key=b"\xff\x00k")
        assert p.flush(30) == 0
    caplog.set_level(logging.ERROR)
    config = LoopConfig([src], group_id, delivery=delivery, consumer_config=LIMITS)  # type: ignore[arg-type]
    loop = BatchLoop(settings, config, EchoHandler(out))
    with running(loop):
        wait_for(lambda: loop.processed == 3, 30, "the loop to read past the bomb",
                 lambda: loop.health()[1])  # fmt: skip
        wait_for(lambda: committed_offset(settings.kafka_bootstrap, group_id, src) == 3, 30,
                 "offsets committed past the bomb")  # fmt: skip
        ok, detail = loop.health()
        assert ok and detail["dead_lettered"] == 1, detail
    got = read_all(settings.kafka_bootstrap, out, 2, 10)
    assert sorted(m.value() for m in got) == [b"AFTER", b"BEFORE"]
    (dead,) = read_all(settings.kafka_bootstrap, src + ".dlq", 1, 10)
    info = DeadLetterInfo.from_kafka_headers(dead.headers())
    assert (info.original_topic, info.original_partition, info.original_offset) == (src, 0, 1)
    assert info.error_class == "UnreadableRecordError"
    assert "_BAD_COMPRESSION" in info.error_message and "no payload" in info.error_message
    assert dead.value() is None
    said = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(said) == 1, "said once, not once per fetch"


class _Seeks:
    """Stands in for the consumer: records where ``split`` seeks to."""

    def __init__(self) -> None:
        self.to: list[tuple[str, int, int]] = []

    def seek(self, tp: TopicPartition) -> None:
        self.to.append((tp.topic, tp.partition, tp.offset))


def _msg(offset: int, error: int | None = None, partition: int = 0) -> Message:
    err = KafkaError(error, "failed") if error is not None else None
    return Message(topic="t", partition=partition, offset=offset, value=b"v", error=err)


def test_each_record_of_a_batch_that_keeps_failing_is_skipped_once_in_order() -> None:
    """A compressed batch at 5..7 fails as a whole, always reported at its base offset 5."""
    seeks, unreadable = _Seeks(), UnreadableRecords()
    taken: list[int] = []
    for _ in range(3):
        batch, _, errors = unreadable.split(seeks, [_msg(5, KafkaError._BAD_COMPRESSION)])  # type: ignore[arg-type]
        assert errors == []
        taken += [int(m.offset() or 0) for m in batch]
    assert taken == [5, 6, 7]
    assert seeks.to == [("t", 0, 6), ("t", 0, 7), ("t", 0, 8)]
    # reading on after the batch; a rewind makes the positions sought to meaningless
    batch, readable, _ = unreadable.split(seeks, [_msg(8), _msg(9)])  # type: ignore[arg-type]
    assert [m.offset() for m in batch] == [8, 9]
    assert readable is batch  # no stand-in: the batch is all records, not copied
    unreadable.forget()
    batch, _, _ = unreadable.split(seeks, [_msg(2, KafkaError._BAD_MSG)])  # type: ignore[arg-type]
    assert [m.offset() for m in batch] == [2]


def test_past_an_unreadable_record_its_partition_waits_for_the_seek_others_go_on() -> None:
    seeks, unreadable = _Seeks(), UnreadableRecords()
    raw = [
        _msg(0),
        _msg(1, KafkaError._BAD_COMPRESSION),
        _msg(1, KafkaError._BAD_COMPRESSION),  # fetched twice before the seek
        _msg(2),
        _msg(0, partition=1),
        _msg(3, KafkaError._PARTITION_EOF, partition=1),
    ]
    batch, readable, errors = unreadable.split(seeks, raw)  # type: ignore[arg-type]
    assert [(m.partition(), m.offset()) for m in readable] == [(0, 0), (1, 0)]
    assert [(m.partition(), m.offset(), m.error() is None) for m in batch] == [
        (0, 0, True),
        (0, 1, False),
        (1, 0, True),
    ]
    assert [e.error().code() for e in errors] == [KafkaError._PARTITION_EOF]  # type: ignore[union-attr]
    assert seeks.to == [("t", 0, 2)]
