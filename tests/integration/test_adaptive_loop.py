"""Adaptive batching in the one loop, against the real broker: a message that wakes an idle loop
is prepared and run at once in the loop's thread (no hand-off to the prepare thread and back);
a backlog still overlaps preparing batch n+1 with running batch n; a preparation that raises on
either path ends as a dead letter with its reason. With exactly-once, each quiet message is its own
transaction, and a message that stops the loop is never committed."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.exceptions import FatalHandlerError
from streamsense.services.kafka.handler import Outcome
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import Producer
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.kafka_helpers import EchoHandler, read_all

pytestmark = pytest.mark.integration


class WhereHandler(EchoHandler):
    """Records the thread each batch was prepared in; values starting with b"unprep" make
    ``prepare`` itself raise."""

    def __init__(self, out_topic: str) -> None:
        super().__init__(out_topic, delay_s=0.02)
        self.prepared_in: list[tuple[str, int]] = []

    def prepare(self, messages: list[Message]) -> list[Message]:
        self.prepared_in.append((threading.current_thread().name, len(messages)))
        if any((m.value() or b"").startswith(b"unprep") for m in messages):
            msg = "cannot prepare this one"
            raise ValueError(msg)
        return messages


def test_a_quiet_stream_runs_at_once_a_backlog_overlaps_and_bad_preparations_dead_letter(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    src, out = make_topic("in"), make_topic("out")
    handler = WhereHandler(out)
    loop = BatchLoop(
        settings, LoopConfig([src], group_id, max_batch=8, delivery="at-least-once"), handler
    )
    runner = threading.Thread(target=loop.run, name="the-loop", daemon=True)
    runner.start()
    try:
        wait_for(lambda: bool(loop.assignment), timeout=30, what="partition assignment")
        p = Producer(settings, linger_ms=0)
        for n, value in enumerate((b"first", b"unprep-quiet"), 1):  # the loop idle between
            p.produce(src, value)
            assert p.flush(10) == 0
            wait_for(lambda n=n: loop.processed >= n, timeout=30, what=f"{value!r} processed")
        quiet = list(handler.prepared_in)
        assert quiet[0] == ("the-loop", 1), quiet  # prepared where it ran, at once
        assert {name for name, _ in quiet} == {"the-loop"}, quiet  # the bad one too
        # a backlog: batch n+1 is prepared in the prepare thread while batch n runs
        for i in range(60):
            p.produce(src, b"unprep-backlog" if i == 30 else f"b{i}".encode())
        assert p.flush(10) == 0
        wait_for(lambda: loop.processed >= 62, timeout=60, what="the backlog processed")
        threads = {name for name, _ in handler.prepared_in[len(quiet) :]}
        assert any(name.endswith("-prep_0") for name in threads), threads
        p.close(5)
    finally:
        loop.stop()
        runner.join(30)
    got = read_all(settings.kafka_bootstrap, out, 60)
    assert sorted(m.value() for m in got) == sorted(
        [b"FIRST", *(f"B{i}".encode() for i in range(60) if i != 30)]
    )
    dead = read_all(settings.kafka_bootstrap, src + ".dlq", 2)
    assert sorted(m.value() for m in dead) == [b"unprep-backlog", b"unprep-quiet"]
    for m in dead:
        assert DeadLetterInfo.from_kafka_headers(m.headers()).error_message == (
            "cannot prepare this one"
        )


class StopOnFatal(EchoHandler):
    """Echoes, but a value starting with b"fatal" stops the loop (a broken model store)."""

    def process(self, prepared: list[Message]) -> list[Outcome]:
        if any((m.value() or b"").startswith(b"fatal") for m in prepared):
            msg = "the model store is gone"
            raise FatalHandlerError(msg)
        return super().process(prepared)


def _committed(settings: StreamsenseSettings, group_id: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group_id})
    try:
        return int(c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset)
    finally:
        c.close()


def test_exactly_once_commits_each_quiet_message_and_never_one_that_stopped_the_loop(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    """Quiet messages, one at a time: each result is read (read_committed) once and the group's
    committed offset follows each message. A message that stops the loop (the drain commits
    what finished) is not committed: the next loop of the group reads it again."""
    src, out = make_topic("in"), make_topic("out")
    config = LoopConfig([src], group_id, max_batch=8, delivery="exactly-once")
    loop = BatchLoop(settings, config, StopOnFatal(out))
    failed: list[BaseException] = []

    def run(lp: BatchLoop[list[Message]]) -> None:
        try:
            lp.run()
        except FatalHandlerError as exc:
            failed.append(exc)

    runner = threading.Thread(target=run, args=(loop,), daemon=True)
    runner.start()
    p = Producer(settings, linger_ms=0)
    try:
        wait_for(lambda: bool(loop.assignment), timeout=30, what="partition assignment")
        for n, value in enumerate((b"one", b"two", b"three"), 1):
            p.produce(src, value)
            assert p.flush(10) == 0
            wait_for(lambda n=n: loop.delivery.state()["transactions"] >= n, timeout=30,
                     what=f"{value!r} committed")  # fmt: skip
            assert _committed(settings, group_id, src) == n
        p.produce(src, b"fatal")
        assert p.flush(10) == 0
        runner.join(30)
        assert failed and not runner.is_alive(), "the fatal error stops the loop"
        assert _committed(settings, group_id, src) == 3, "the unfinished message is not skipped"
        assert [m.value() for m in read_all(settings.kafka_bootstrap, out, 3)] == [
            b"ONE",
            b"TWO",
            b"THREE",
        ]
        again = BatchLoop(settings, config, EchoHandler(out))  # the store is back
        again.run(max_messages=1)
        assert _committed(settings, group_id, src) == 4
    finally:
        loop.stop()
        p.close(5)
    got = read_all(settings.kafka_bootstrap, out, 5, timeout=10)
    assert [m.value() for m in got] == [b"ONE", b"TWO", b"THREE", b"FATAL"]
