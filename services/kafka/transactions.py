"""Exactly-once for the batch loop, KIP-447 style: the outputs of a round of batches (results
and dead letters) and the consumed offsets that produced them are committed in one Kafka
transaction (``send_offsets_to_transaction`` with the consumer's group metadata, so a zombie
of an older group generation is fenced by the broker). Readers with
``isolation.level=read_committed`` see either all of a round or none of it.

A round is committed when it has lasted ``interval_ms`` or when the loop has nothing else to
do, so a quiet stream pays one transaction per batch (lowest latency) and a busy one pays one
per interval (the cost of a transaction, a few round trips, is shared by many batches). In
between, a loop that keeps up (its last fetch was not a full batch) commits once the round has
lasted ``KEEPING_UP_ROUNDS`` times what a commit takes: its results wait a few commits, not the
whole interval, and commits still take at most a fifth of its time. A loop behind (full
batches) keeps the interval, so throughput at saturation does not pay for it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamsense.services.kafka.offsets import TopicPartitionKey
from streamsense.services.kafka.producer import Producer
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)

#: Timeout of each transactional call (they normally take milliseconds).
CALL_TIMEOUT_S = 30.0
#: init_transactions errors that mean "not now": the coordinator is not reachable yet.
RETRY_INIT = frozenset({KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})
#: One attempt to register the transactional id; repeated while the cluster does not answer.
INIT_ATTEMPT_S = 5.0
INIT_PAUSE_S = 1.0
#: A loop that keeps up commits a round once it has lasted this many times a commit's duration.
KEEPING_UP_ROUNDS = 4


def transactional_id(settings: StreamsenseSettings, group_id: str) -> str:
    """Stable with static membership (a restarted member fences its previous incarnation at
    once), unique per process otherwise (group metadata fencing, KIP-447, does the rest)."""
    member = settings.kafka_group_instance_id or uuid.uuid4().hex[:12]
    return f"{group_id}.{member}"


class TransactionFailedError(Exception):
    """A round could not be committed: it was aborted and must be read again."""

    def __init__(self, reason: str, *, fatal: bool) -> None:
        super().__init__(reason)
        self.fatal = fatal


class Transactions:
    def __init__(self, producer: Producer, consumer: Consumer, interval_ms: int) -> None:
        self.producer = producer
        self.consumer = consumer
        self.interval_s = interval_ms / 1000
        self.open = False
        self.started = 0.0
        self.committed = 0
        self.aborted = 0
        self.commit_ms = 0.0  # moving average of committing a round (offsets + commit)
        self._looked = time.monotonic()  # when the loop last asked whether a round is due

    def init(self, stop: threading.Event, waiting: Callable[[], None]) -> None:
        """Register the transactional id (fencing an earlier producer with the same id). Done
        in the loop's thread once it runs, so a service whose cluster does not answer yet is
        up, red and saying why (the watchdog) instead of stuck starting; tried again until
        the cluster answers or ``stop`` is set, calling ``waiting`` in between."""
        waited = False
        while not stop.is_set():
            try:
                self.producer.init_transactions(INIT_ATTEMPT_S)
            except KafkaException as exc:
                err = exc.args[0]
                if err.fatal() or not (err.retriable() or err.code() in RETRY_INIT):
                    raise
                if not waited:
                    log.warning("waiting for the transaction coordinator: %s", err.str())
                    waited = True
                waiting()
                stop.wait(INIT_PAUSE_S)
            else:
                return

    def begin(self) -> None:
        """Open a transaction unless one is open (before the round's first output)."""
        if not self.open:
            self.producer.begin_transaction()
            # the round's clock starts when the loop last looked (before the batch that opens
            # the round ran), so a batch slower than the interval is committed right after it;
            # from its output on, it waited a whole further batch (detect under overload: p99
            # 1.0 s instead of 0.76 s)
            self.open, self.started = True, self._looked

    def due(self, idle: bool, keeping_up: bool = False) -> bool:
        """Whether to commit the open round now: the loop has nothing else to do, the round
        has lasted the interval, or the loop keeps up and the round has lasted
        ``KEEPING_UP_ROUNDS`` commits."""
        self._looked = now = time.monotonic()
        if not self.open:
            return False
        lasted = now - self.started
        if idle or lasted >= self.interval_s:
            return True
        return keeping_up and lasted * 1000 >= KEEPING_UP_ROUNDS * self.commit_ms

    def commit(self, offsets: dict[TopicPartitionKey, int]) -> None:
        """Add ``offsets`` (next offset to read, per partition) and commit; on failure abort
        and raise :class:`TransactionFailedError`."""
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        start = time.perf_counter()
        try:
            if tps:
                metadata = self.consumer.consumer_group_metadata()
                self.producer.send_offsets_to_transaction(tps, metadata, CALL_TIMEOUT_S)
            self._commit_with_retries()
        except KafkaException as exc:
            err = exc.args[0]
            fatal = err.fatal() or not err.txn_requires_abort()
            if fatal:
                self.open = False
            else:
                # an abortable error can turn fatal meanwhile: the coordinator timed the
                # transaction out and bumped the epoch (a leader away longer than
                # transaction.timeout.ms), so the abort is fenced and the producer unusable
                fatal = not self.abort()
            msg = f"transaction not committed: {err.str()}"
            raise TransactionFailedError(msg, fatal=fatal) from exc
        self.open = False
        self.committed += 1
        # what a round's results wait, after their batch, before read_committed readers see them
        ms = 1000 * (time.perf_counter() - start)
        self.commit_ms = ms if self.committed == 1 else 0.9 * self.commit_ms + 0.1 * ms

    def _commit_with_retries(self) -> None:
        for attempt in range(3):
            try:
                self.producer.commit_transaction(CALL_TIMEOUT_S)
                return
            except KafkaException as exc:
                if not exc.args[0].retriable() or attempt == 2:
                    raise
                log.warning("commit_transaction: %s; retrying", exc.args[0].str())

    def abort(self) -> bool:
        """Abort the open transaction; False when the abort failed, which leaves the producer
        unusable (fenced or in a fatal state): the caller must replace it."""
        if not self.open:
            return True
        self.open = False
        self.aborted += 1
        try:
            self.producer.abort_transaction(CALL_TIMEOUT_S)
        except KafkaException as exc:
            log.error("abort_transaction: %s", exc.args[0].str())
            return False
        return True

    def state(self) -> dict[str, Any]:
        return {"transactions": self.committed, "aborted": self.aborted,
                "commit_ms": round(self.commit_ms, 1)}  # fmt: skip
