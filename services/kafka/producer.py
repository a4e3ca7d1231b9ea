"""Idempotent producer with bounded in-flight records and an explicit backpressure policy.

``block``: when ``max_in_flight`` records wait for acknowledgement, ``produce`` serves delivery
callbacks until there is room (nothing lost, the caller slows down).

``drop-oldest``: records wait in a small local queue; only ``max_in_flight`` are handed to
librdkafka at a time. When the local queue is full the oldest waiting record is dropped and
counted, so a camera keeps sending its newest frame instead of building a backlog.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import Producer as _RdProducer

from streamsense.schemas.catalog import FRAME_MAX_BYTES
from streamsense.services.kafka.clientlog import ClientState
from streamsense.services.kafka.exceptions import KafkaIOError
from streamsense.services.observability import metrics
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)

#: A transactional producer's first retry (librdkafka doubles it up to retry.backoff.max.ms);
#: librdkafka and the Java client use 20 ms for a concurrent transaction's partitions too.
TXN_RETRY_BACKOFF_MS = 20
#: Failed deliveries logged per (topic, error) before only one in FAILURES_LOG_EVERY is.
FAILURES_LOGGED, FAILURES_LOG_EVERY = 3, 1000

DeliveryCallback = Callable[[KafkaError | None, Message], None]
Headers = Sequence[tuple[str, bytes | str]]


class BackpressurePolicy(StrEnum):
    BLOCK = "block"
    DROP_OLDEST = "drop-oldest"


@dataclass(slots=True)
class _Record:
    topic: str
    value: bytes | None
    key: bytes | str | None
    headers: Headers | None
    on_delivery: DeliveryCallback | None


def producer_config(
    settings: StreamsenseSettings,
    client: dict[str, Any],
    *,
    compression: str,
    linger_ms: float,
    max_in_flight: int,
    transactional_id: str | None,
) -> dict[str, Any]:
    """librdkafka's configuration for :class:`Producer` (``client``: the client's own log and
    error settings)."""
    conf: dict[str, Any] = {
        **settings.librdkafka_config(),
        **client,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": compression,
        "linger.ms": linger_ms,
        # librdkafka's own queue must never be the limit: ours is.
        "queue.buffering.max.messages": max(100_000, 2 * max_in_flight),
        "queue.buffering.max.kbytes": 1_048_576,
        "message.max.bytes": FRAME_MAX_BYTES,
    }
    if transactional_id is not None:
        conf["transactional.id"] = transactional_id
        conf["transaction.timeout.ms"] = settings.kafka_transaction_timeout_ms
        # A quiet stream begins its next transaction while the coordinator still writes
        # the last one's markers; it answers CONCURRENT_TRANSACTIONS and librdkafka adds
        # the offsets again after retry.backoff.ms: 100 ms by default, a stall for every
        # result of the round (p99 91-124 ms at 200 lines/s; 22-37 ms with 20). A value from
        # STREAMSENSE_KAFKA_EXTRA (merged above) wins.
        conf.setdefault("retry.backoff.ms", TXN_RETRY_BACKOFF_MS)
    return conf


class Producer:
    """A confluent-kafka producer with ``acks=all``, idempotence, compression and backpressure."""

    def __init__(
        self,
        settings: StreamsenseSettings,
        *,
        policy: BackpressurePolicy = BackpressurePolicy.BLOCK,
        max_in_flight: int = 10_000,
        pending_limit: int = 8,
        compression: str = "lz4",
        linger_ms: float = 5.0,
        config: dict[str, Any] | None = None,
        transactional_id: str | None = None,
    ) -> None:
        if max_in_flight < 1 or pending_limit < 1:
            msg = "max_in_flight and pending_limit must be >= 1"
            raise ValueError(msg)
        self.policy = policy
        self.max_in_flight = max_in_flight
        self.service = settings.service_name
        self.client = ClientState.of(self.service, settings.kafka_bootstrap)
        conf = producer_config(
            settings,
            self.client.librdkafka_config(),
            compression=compression,
            linger_ms=linger_ms,
            max_in_flight=max_in_flight,
            transactional_id=transactional_id,
        )
        conf.update(config or {})
        self.transactional_id = transactional_id
        self._rd = _RdProducer(conf)
        self._in_flight = 0
        self._pending: deque[_Record] = deque()
        self._pending_limit = pending_limit
        self.dropped = 0
        self.failed = 0
        self.acked = 0
        self._children: dict[str, tuple[Any, Any, Any]] = {}
        self._failures: dict[tuple[str, int], int] = {}  # failed deliveries by (topic, error)
        self._in_flight_gauge = metrics.IN_FLIGHT.labels(self.service)
        self._closed = False

    # -- public API ---------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Records handed to librdkafka whose delivery report was not served yet."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Records queued locally by the drop-oldest policy, not yet handed to librdkafka."""
        return len(self._pending)

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        headers: Headers | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Send one record. ``on_delivery(err, msg)`` runs from ``poll``/``flush``; a caller
        that passes one counts deliveries itself with :meth:`account` (batch-wise, cheaply)."""
        if self.policy is BackpressurePolicy.BLOCK:
            while self._in_flight >= self.max_in_flight:
                self._rd.poll(0.05)
            self._send(topic, value, key, headers, on_delivery)
            return
        if len(self._pending) >= self._pending_limit:
            old = self._pending.popleft()
            self.dropped += 1
            self._metric(old.topic)[2].inc()
        self._pending.append(_Record(topic, value, key, headers, on_delivery))
        self._pump()

    def send_and_wait(
        self, topic: str, value: bytes, key: bytes | str | None, timeout: float = 10.0
    ) -> None:
        """Produce one record and wait for its acknowledgement; KafkaIOError with the reason
        when it is refused or not acknowledged within ``timeout`` seconds."""
        errors: list[str] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(str(err))

        self.produce(topic, value, key, None, delivered)
        left = self.flush(timeout)
        ok = not (left or errors)
        self.account(topic, int(ok), int(not ok))
        if not ok:
            msg = f"record not delivered to {topic}: {errors or f'no ack in {timeout:g} s'}"
            raise KafkaIOError(msg)

    def account(self, topic: str, acked: int, failed: int = 0) -> None:
        """Count deliveries reported to a caller's own ``on_delivery``."""
        ok, bad, _ = self._metric(topic)
        if acked:
            self.acked += acked
            ok.inc(acked)
        if failed:
            self.failed += failed
            bad.inc(failed)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks, then hand waiting records over as room frees up."""
        n = int(self._rd.poll(timeout))
        self._pump()
        self._in_flight_gauge.set(self._in_flight)
        return n

    def flush(self, timeout: float = 30.0) -> int:
        """Deliver everything, waiting records included, now: librdkafka does not wait out
        ``linger.ms`` during a flush, so a caller with nothing more to send right now flushes
        rather than polls (a quiet log's line reaches Kafka ~1 ms sooner). Delivery callbacks
        run here; returns how many records are still undelivered."""
        deadline = time.monotonic() + timeout
        while (self._pending or self._in_flight) and time.monotonic() < deadline:
            self._rd.flush(min(0.1, max(0.0, deadline - time.monotonic())))
            self._pump()
        self._in_flight_gauge.set(self._in_flight)
        return len(self._pending) + self._in_flight

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is left (up to ``timeout``), then release the client and its broker
        connections. Records still undelivered are logged, counted as failed and dropped.
        Closing twice is harmless; producing after ``close`` raises ``RuntimeError``.

        A fenced transactional producer (the loop replaces it) raises its fatal error from
        every call, ``close`` included, though the client is released all the same: closing
        it logs the error and goes on."""
        if self._closed:
            return
        try:
            left = self.flush(timeout)
            if left:
                log.error("producer closed with %d records undelivered", left)
                self._rd.purge()
                self._rd.poll(0)  # serve the purged records' reports: they count as failed
        except KafkaException as exc:
            log.warning("%s: closing a failed producer: %s", self.service, exc.args[0].str())
        while self._pending:
            self.account(self._pending.popleft().topic, 0, 1)
        self._closed = True
        try:
            self._rd.close()
        except KafkaException as exc:
            log.warning("%s: closing a failed producer: %s", self.service, exc.args[0].str())

    def list_topics(self, timeout: float = 10.0) -> Any:
        return self._rd.list_topics(timeout=timeout)

    # -- transactions (a producer made with ``transactional_id``) ----------------------------

    def init_transactions(self, timeout: float) -> None:
        """Register the transactional id (fencing any earlier producer with the same id)."""
        self._rd.init_transactions(timeout)

    def begin_transaction(self) -> None:
        self._rd.begin_transaction()

    def send_offsets_to_transaction(
        self, offsets: list[Any], group_metadata: Any, timeout: float
    ) -> None:
        self._rd.send_offsets_to_transaction(offsets, group_metadata, timeout)

    def commit_transaction(self, timeout: float) -> None:
        """Deliver every record of the transaction (their callbacks run here), then commit."""
        try:
            self._rd.commit_transaction(timeout)
        finally:
            self._in_flight_gauge.set(self._in_flight)

    def abort_transaction(self, timeout: float) -> None:
        """Discard the transaction's records (read_committed readers never see them)."""
        self._rd.abort_transaction(timeout)
        self._rd.poll(0)  # serve the purged records' reports

    # -- internals ----------------------------------------------------------------------------

    def _pump(self) -> None:
        pending = self._pending
        while pending and self._in_flight < self.max_in_flight:
            r = pending.popleft()
            self._send(r.topic, r.value, r.key, r.headers, r.on_delivery)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        self._in_flight -= 1
        topic = str(msg.topic())
        if err is None:
            self.account(topic, 1)
        else:
            self.account(topic, 0, 1)
            # a lost broker fails every queued record: the first few say why, then a count
            key = (topic, err.code())
            n = self._failures[key] = self._failures.get(key, 0) + 1
            if n <= FAILURES_LOGGED or n % FAILURES_LOG_EVERY == 0:
                more = "" if n <= FAILURES_LOGGED else f" ({n} such failures so far)"
                if n == FAILURES_LOGGED:
                    more = f" (further ones logged 1 in {FAILURES_LOG_EVERY})"
                log.error("delivery to %s failed: %s%s", topic, err, more)

    def _send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None,
        headers: Headers | None,
        on_delivery: DeliveryCallback | None,
    ) -> None:
        cb: DeliveryCallback
        if on_delivery is None:
            cb = self._delivered
        else:

            def cb(
                err: KafkaError | None, msg: Message, user: DeliveryCallback = on_delivery
            ) -> None:
                self._in_flight -= 1
                user(err, msg)

        for _ in range(600):
            try:
                if headers:
                    self._rd.produce(topic, value, key, headers=list(headers), on_delivery=cb)
                else:
                    self._rd.produce(topic, value, key, on_delivery=cb)
                self._in_flight += 1
                return
            except BufferError:
                self._rd.poll(0.05)
        msg = f"librdkafka queue stayed full for 30 s producing to {topic}"
        raise KafkaIOError(msg)

    def _metric(self, topic: str) -> tuple[Any, Any, Any]:
        child = self._children.get(topic)
        if child is None:
            child = (
                metrics.MESSAGES_PRODUCED.labels(self.service, topic),
                metrics.PRODUCE_FAILED.labels(self.service, topic),
                metrics.PRODUCER_DROPPED.labels(self.service, topic),
            )
            self._children[topic] = child
        return child
