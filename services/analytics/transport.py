"""Faust's aiokafka transport, reading with ``isolation.level=read_committed``.

The workers write results in Kafka transactions (exactly-once): a reader that sees uncommitted
records would count a result of an aborted round, and count it again when the round is read
again. Faust reads committed data only when it runs ``processing_guarantee=exactly_once``
itself; the analytics app runs at-least-once (its tables are exact through the offsets they
record), so its consumer is this one: the same transport, with the isolation level set before
the consumer starts (aiokafka passes it to its fetcher in ``start``).
"""

from __future__ import annotations

from typing import Any

import faust.transport.drivers.aiokafka as aio
from faust.transport.drivers import TRANSPORTS

from streamsense.services.analytics.settings import READ_COMMITTED_SCHEME


class ReadCommittedConsumerThread(aio.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._isolation_level = "read_committed"  # noqa: SLF001 - read by aiokafka's start()
        return consumer


class ReadCommittedConsumer(aio.Consumer):
    def _new_consumer_thread(self) -> aio.AIOKafkaConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(aio.Transport):
    Consumer = ReadCommittedConsumer


def register() -> None:
    """Make ``streamsense-rc://`` broker URLs resolve to this transport (idempotent)."""
    TRANSPORTS.aliases[READ_COMMITTED_SCHEME] = f"{__name__}:Transport"
