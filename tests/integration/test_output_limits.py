"""An output larger than its topic accepts, from any service's handler, against the real
broker: the broker refuses such a record on every retry, so the batch was read again for ever
(exactly-once: the transaction aborted each time) and the partition stalled behind it. The loop
now dead-letters its input with the reason and serves the records behind it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Message
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.handler import BatchHandler, Outcome, OutRecord
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import RECORD_MARGIN, spec_of
from streamsense.services.settings import StreamsenseSettings
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration

#: A results topic's limit (the catalogue's), as deployed by `streamsense topics create`.
LIMIT = spec_of("results.sentiment").max_message_bytes


class Inflating(BatchHandler[list[Message]]):
    """Each input becomes one output; an input ``big`` becomes one just over the topic's
    limit, ``edge`` one exactly at the budget (key + value + headers)."""

    def __init__(self, out: str) -> None:
        self.out = out

    def process(self, prepared: list[Message]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for m in prepared:
            value = m.value() or b""
            headers = [("h", b"12")]
            if value == b"big":
                value = b"x" * (LIMIT + 1)
            elif value == b"edge":
                value = b"y" * (LIMIT - RECORD_MARGIN - len(b"k") - len(b"h12"))
            outcomes.append([OutRecord(self.out, value, key=b"k", headers=headers)])
        return outcomes


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_an_output_over_its_topics_limit_dead_letters_its_input_and_the_rest_is_served(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str, delivery: str
) -> None:
    prefix = f"lim{uuid.uuid4().hex[:8]}."
    s = settings.model_copy(update={"topic_prefix": prefix})
    out = prefix + "results.sentiment"
    spec = spec_of("results.sentiment")
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(out, 1, 1, config=spec.configs())]).values():
        fut.result()
    src = make_topic("in")
    p = Producer(s)
    for v in (b"a", b"big", b"edge", b"b"):
        p.produce(src, v, key="k")
    assert p.flush(30) == 0

    loop = BatchLoop(s, LoopConfig([src], group_id, max_batch=8, delivery=delivery),
                     Inflating(out), None)  # fmt: skip
    loop.run(max_messages=4)

    got = read_all(s.kafka_bootstrap, out, 3, 30)
    assert [len(m.value()) for m in got] == [1, LIMIT - RECORD_MARGIN - 4, 1], "the rest served"
    (dead,) = read_all(s.kafka_bootstrap, src + ".dlq", 1, 30)
    info = DeadLetterInfo.from_kafka_headers(dead.headers())
    assert (info.error_class, info.original_offset, dead.value()) == (
        "OutputTooLargeError",
        1,
        b"big",
    )
    assert f"over the {LIMIT - RECORD_MARGIN} bytes that topic accepts" in info.error_message
