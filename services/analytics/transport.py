"""Faust's aiokafka transport, reading with ``isolation.level=read_committed``.

The workers write results in Kafka transactions (exactly-once): a reader that sees uncommitted
records would count a result of an aborted round, and count it again when the round is read
again. Faust reads committed data only when it runs ``processing_guarantee=exactly_once``
itself; the analytics app runs at-least-once (its tables are exact through the offsets they
record), so its consumer is this one: the same transport, with the isolation level set before
the consumer starts (aiokafka passes it to its fetcher in ``start``).

Its producer also keeps metadata for every topic it knows. aiokafka 0.14's client fetches all
topics until its first send to a topic it has not seen; from then on it asks for the topics it
was told to add, and nothing else, so every other topic drops out of its metadata. A batch
already queued for one of those (a window output sent just before the first changelog write
to a topic created moments earlier) then has no leader, and the sender asks again for the
same narrow list until the request timeout: 30 s of metadata requests in a hot loop, then
``NotLeaderForPartitionError`` and a crashed app. Seen on a fresh broker, where the changelog
topics Faust creates are not yet in the first metadata.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust.transport.drivers.aiokafka as aio
from aiokafka.client import AIOKafkaClient
from faust.transport.drivers import TRANSPORTS

from streamsense.services.analytics import records
from streamsense.services.analytics.settings import READ_COMMITTED_SCHEME


class ReadCommittedConsumerThread(aio.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._isolation_level = "read_committed"  # noqa: SLF001 - read by aiokafka's start()
        return consumer


class ReadCommittedConsumer(aio.Consumer):
    def _new_consumer_thread(self) -> aio.AIOKafkaConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)


def keep_known_topics(client: AIOKafkaClient) -> None:
    """Make ``client.add_topic`` widen what the client tracks instead of narrowing it."""
    narrow = client.add_topic

    def add_topic(topic: str) -> Any:
        tracked = client._topics  # noqa: SLF001 - empty means "all topics" to aiokafka
        if not tracked:
            tracked.update(client.cluster.topics())
        return narrow(topic)

    client.add_topic = add_topic


class WideMetadataProducer(aiokafka.AIOKafkaProducer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        keep_known_topics(self.client)


class Producer(aio.Producer):
    @property
    def _producer_type(self) -> type[aiokafka.AIOKafkaProducer]:
        return WideMetadataProducer


class Transport(aio.Transport):
    Consumer = ReadCommittedConsumer
    Producer = Producer


def register() -> None:
    """Make ``streamsense-rc://`` broker URLs resolve to this transport, whose fetches a header
    key that is not UTF-8 cannot break (:mod:`.records`); idempotent."""
    records.install()
    TRANSPORTS.aliases[READ_COMMITTED_SCHEME] = f"{__name__}:Transport"
