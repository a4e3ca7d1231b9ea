"""A fenced transactional producer is replaced, and its failed round read again.

A second producer registering the loop's transactional id fences the loop's producer mid-stream,
as the coordinator does when a transaction times out while a partition leader is away (the
three-broker case: tests/reliability/test_learner_cluster.py). Every later call of the fenced
producer fails for good: the loop must close it (confluent-kafka raises the fatal error from
that close, though the client is released), start a new one, and read the round that failed
again, so that a read_committed reader still sees the output of every input exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from confluent_kafka import Producer as RdProducer

from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import Producer
from streamsense.services.runner import running
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.integration.test_exactly_once import read_committed
from tests.kafka_helpers import EchoHandler, committed_offset


def test_a_fenced_producer_is_replaced_and_every_output_committed_once(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    src, out = make_topic("fence"), make_topic("fenceout")
    s = settings.model_copy(update={"delivery": "exactly-once"})
    loop = BatchLoop(s, LoopConfig([src], group_id, max_batch=16), EchoHandler(out))
    feed = Producer(settings)

    def send(start: int, n: int) -> None:
        for i in range(start, start + n):
            feed.produce(src, f"m{i}".encode(), key="k")
        assert feed.flush(30) == 0

    with running(loop):
        send(0, 100)
        wait_for(
            lambda: committed_offset(s.kafka_bootstrap, group_id, src) == 100, 60, "100 committed"
        )
        fenced = loop.producer.transactional_id
        newer = RdProducer({"bootstrap.servers": s.kafka_bootstrap, "transactional.id": fenced})
        newer.init_transactions(30)  # the loop's producer is fenced from now on
        send(100, 100)
        wait_for(
            lambda: committed_offset(s.kafka_bootstrap, group_id, src) == 200, 60, "200 committed"
        )
        wait_for(lambda: loop.health()[0], 30, "healthy again")
        assert loop.producer.transactional_id != fenced, "the fenced producer was replaced"
        newer.close()
    feed.close()
    got = Counter(read_committed(s.kafka_bootstrap, out))
    assert got == {f"M{i}".encode(): 1 for i in range(200)}
