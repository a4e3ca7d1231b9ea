"""Exactly-once delivery when a round cannot be committed, with a scripted producer.

The cluster test (tests/reliability/test_learner_cluster.py) reaches these paths through a
leader away longer than ``transaction.timeout.ms``; here each failure is scripted, so the
policy's answer is checked exactly: read the failed round again, and replace a producer that
cannot abort.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamsense.services.kafka import transactions
from streamsense.services.kafka.delivery import ExactlyOnce
from streamsense.services.kafka.offsets import OffsetTracker

TP = ("labels", 0)
ABORTABLE = KafkaError(KafkaError._TIMED_OUT, "1 message(s) timed out", txn_requires_abort=True)
TIMED_OUT = KafkaError(KafkaError._TIMED_OUT, "coordinator not available", retriable=True)
FENCED = KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True)


class ScriptedProducer:
    """The transactional calls :class:`Transactions` makes; ``fail`` names the calls that
    raise, with the error to raise."""

    def __init__(self, fail: dict[str, KafkaError] | None = None) -> None:
        self.fail = fail or {}
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise KafkaException(self.fail[name])

    def init_transactions(self, _timeout: float) -> None:
        self._call("init")

    def begin_transaction(self) -> None:
        self._call("begin")

    def send_offsets_to_transaction(self, *_args: Any) -> None:
        self._call("offsets")

    def commit_transaction(self, _timeout: float) -> None:
        self._call("commit")

    def abort_transaction(self, _timeout: float) -> None:
        self._call("abort")


class GroupConsumer:
    def consumer_group_metadata(self) -> object:
        return object()


def _round(producer: ScriptedProducer, tracker: OffsetTracker, failures: list[str]) -> ExactlyOnce:
    """A policy that has run one round of offsets 10..12 (13 consumed after it) and settled."""
    delivery = ExactlyOnce(producer, GroupConsumer(), tracker, failures.append, 100)  # type: ignore[arg-type]
    delivery.start(threading.Event(), lambda: None)
    for off in (10, 11, 12):
        tracker.consumed(TP, off)
    delivery.batch_ack([(TP, 10), (TP, 11), (TP, 12)]).release()
    tracker.consumed(TP, 13)  # the loop fetched the next batch before settling this one
    delivery.settle(idle=True)
    return delivery


def test_a_round_that_fails_and_aborts_is_read_again_with_the_same_producer() -> None:
    producer, tracker, failures = ScriptedProducer({"commit": ABORTABLE}), OffsetTracker(), []
    delivery = _round(producer, tracker, failures)
    assert producer.calls == ["init", "begin", "offsets", "commit", "abort"]
    assert failures and not delivery.needs_new_producer
    assert delivery.rewind() == {TP: 10}  # nothing of the failed round is skipped


def test_a_producer_whose_abort_is_fenced_is_replaced_and_the_round_read_again() -> None:
    """The commit fails with an abortable error, but the coordinator has already timed the
    transaction out and bumped the epoch: the abort is fenced. The loop must replace the
    producer (it would raise a fatal error on the next begin), and the policy it makes for the
    new producer must still read the failed round again."""
    producer = ScriptedProducer({"commit": ABORTABLE, "abort": FENCED})
    tracker, failures = OffsetTracker(), []
    delivery = _round(producer, tracker, failures)
    assert delivery.needs_new_producer, "a producer that cannot abort must be replaced"
    replacement = ExactlyOnce(ScriptedProducer(), GroupConsumer(), tracker, failures.append, 100)  # type: ignore[arg-type]
    assert replacement.rewind() == {TP: 10}


def test_an_abort_that_fails_when_reading_again_asks_for_a_new_producer() -> None:
    """A delivery error (not the commit) started the recovery; the abort it makes is fenced."""
    producer, tracker, failures = ScriptedProducer({"abort": FENCED}), OffsetTracker(), []
    delivery = ExactlyOnce(producer, GroupConsumer(), tracker, failures.append, 100)  # type: ignore[arg-type]
    delivery.start(threading.Event(), lambda: None)
    tracker.consumed(TP, 5)
    delivery.batch_ack([(TP, 5)]).release()
    assert delivery.rewind() == {TP: 5}
    assert delivery.needs_new_producer and failures, "the loop recovers once more, replacing it"


def test_registering_the_transactional_id_waits_for_the_cluster_and_stops_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop registers its transactional id once it runs (a service whose cluster does not
    answer yet is up and red, not stuck starting): "not now" errors are tried again, calling
    ``waiting`` in between (the loop's summary line), until it works or the loop stops."""
    monkeypatch.setattr(transactions, "INIT_PAUSE_S", 0.01)
    producer = ScriptedProducer({"init": TIMED_OUT})
    delivery = ExactlyOnce(producer, GroupConsumer(), OffsetTracker(), [].append, 100)  # type: ignore[arg-type]
    assert producer.calls == [], "nothing is asked of the cluster before the loop runs"
    stop, waits = threading.Event(), []

    def waiting() -> None:
        waits.append(1)
        if len(waits) == 2:
            producer.fail.pop("init")  # the cluster answers

    delivery.start(stop, waiting)
    assert producer.calls == ["init", "init", "init"] and len(waits) == 2
    producer.fail["init"] = TIMED_OUT
    stop.set()
    delivery.start(stop, waiting)  # stopped: returns without trying
    assert producer.calls == ["init", "init", "init"]


def test_an_init_error_that_retrying_cannot_fix_is_raised() -> None:
    producer = ScriptedProducer({"init": FENCED})
    delivery = ExactlyOnce(producer, GroupConsumer(), OffsetTracker(), [].append, 100)  # type: ignore[arg-type]
    with pytest.raises(KafkaException):
        delivery.start(threading.Event(), lambda: None)


def test_a_transactional_producer_retries_a_concurrent_transaction_after_20_ms_not_100() -> None:
    """A quiet stream's next transaction can find the last one's markers still being written;
    librdkafka adds the offsets again after retry.backoff.ms, so its 100 ms default stalled
    every result of that round. A setting the operator chose still wins."""
    from streamsense.services.kafka.producer import TXN_RETRY_BACKOFF_MS, producer_config
    from streamsense.services.settings import StreamsenseSettings

    def conf(settings: StreamsenseSettings, tid: str | None) -> dict[str, Any]:
        return producer_config(settings, {}, compression="lz4", linger_ms=0, max_in_flight=10,
                               transactional_id=tid)  # fmt: skip

    plain = StreamsenseSettings(kafka_bootstrap="127.0.0.1:9")
    assert conf(plain, "worker.1")["retry.backoff.ms"] == TXN_RETRY_BACKOFF_MS == 20
    assert "retry.backoff.ms" not in conf(plain, None), "other producers keep librdkafka's"
    chosen = StreamsenseSettings(
        kafka_bootstrap="127.0.0.1:9", kafka_extra={"retry.backoff.ms": 50}
    )
    assert conf(chosen, "worker.1")["retry.backoff.ms"] == 50
