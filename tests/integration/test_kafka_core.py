"""The I/O core against the real broker: round trip, at-least-once, DLQ, groups, backpressure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import BackpressurePolicy, Producer
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.kafka_helpers import EchoHandler, read_all

pytestmark = pytest.mark.integration


def _produce(settings: StreamsenseSettings, topic: str, values: list[bytes], **kw: object) -> None:
    p = Producer(settings)
    for i, v in enumerate(values):
        p.produce(topic, v, key=f"k{i % 4}", headers=[("h", str(i).encode())], **kw)  # type: ignore[arg-type]
    assert p.flush(30) == 0
    assert p.failed == 0


def _start_loop(
    settings: StreamsenseSettings, loop: BatchLoop[object]
) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loop.run()
        except BaseException as exc:  # surfaced to the test
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offs = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        c.close()
    return sum(max(tp.offset, 0) for tp in offs)


def test_round_trip_with_headers_and_keys(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    src, out = make_topic("in"), make_topic("out")
    _produce(settings, src, [f"msg-{i}".encode() for i in range(50)])
    handler = EchoHandler(out)
    loop = BatchLoop(
        settings,
        LoopConfig([src], group_id, max_batch=16, delivery="at-least-once"),
        handler,
        Producer(settings),
    )
    loop.run(max_messages=50)
    got = read_all(settings.kafka_bootstrap, out, 50)
    assert sorted(m.value() for m in got) == sorted(f"MSG-{i}".encode() for i in range(50))
    assert all(m.key() is not None for m in got)
    assert {dict(m.headers())["src-offset"] for m in got} == {str(i).encode() for i in range(50)}
    assert max(handler.batches) > 1, "messages were not batched"
    assert _committed(settings.kafka_bootstrap, group_id, src, 1) == 50
    with pytest.raises(RuntimeError, match="closed"):
        loop.producer.produce(out, b"after")  # the loop released the producer it owned


def test_handler_error_goes_to_dlq_with_reason_and_the_loop_goes_on(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    src, out = make_topic("in"), make_topic("out")
    _produce(settings, src, [b"ok-1", b"bad-2", b"ok-3"])
    loop = BatchLoop(
        settings,
        LoopConfig([src], group_id, delivery="at-least-once"),
        EchoHandler(out),
        Producer(settings),
    )
    loop.run(max_messages=3)
    assert sorted(m.value() for m in read_all(settings.kafka_bootstrap, out, 2)) == [
        b"OK-1",
        b"OK-3",
    ]
    dead = read_all(settings.kafka_bootstrap, src + ".dlq", 1)
    assert len(dead) == 1
    assert dead[0].value() == b"bad-2"
    assert dead[0].key() == b"k1"
    info = DeadLetterInfo.from_kafka_headers(dead[0].headers())
    assert info.error_class == "ValueError"
    assert "cannot handle" in info.error_message
    assert (info.original_topic, info.original_partition, info.original_offset) == (src, 0, 1)
    assert info.service == settings.service_name
    assert ("h", b"1") in dead[0].headers()  # original headers kept
    assert _committed(settings.kafka_bootstrap, group_id, src, 1) == 3


def test_a_raising_handler_is_retried_one_by_one(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    src, out = make_topic("in"), make_topic("out")

    class Fragile(EchoHandler):
        def process(self, prepared):  # type: ignore[no-untyped-def]
            if any((m.value() or b"").startswith(b"boom") for m in prepared):
                raise RuntimeError("boom in batch")
            return super().process(prepared)

    _produce(settings, src, [b"a", b"boom", b"c", b"d"])
    loop = BatchLoop(
        settings,
        LoopConfig([src], group_id, max_batch=10, delivery="at-least-once"),
        Fragile(out),
        Producer(settings),
    )
    loop.run(max_messages=4)
    assert sorted(m.value() for m in read_all(settings.kafka_bootstrap, out, 3)) == [
        b"A",
        b"C",
        b"D",
    ]
    dead = read_all(settings.kafka_bootstrap, src + ".dlq", 1)
    assert [m.value() for m in dead] == [b"boom"]
    assert DeadLetterInfo.from_kafka_headers(dead[0].headers()).error_message == "boom in batch"


def _child(
    bootstrap: str, src: str, out: str, group: str, delay: float, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.loop_child",
            bootstrap,
            src,
            out,
            group,
            str(delay),
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "STREAMSENSE_DELIVERY": "at-least-once",  # these tests are about at-least-once
            **(env or {}),
        },
    )


def test_consumer_killed_before_committing_re_reads(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    """kill -9 mid-stream: nothing is lost; re-processed messages are recognisable duplicates."""
    src, out = make_topic("in"), make_topic("out")
    n = 40
    _produce(settings, src, [f"m{i}".encode() for i in range(n)])
    child = _child(settings.kafka_bootstrap, src, out, group_id, 0.05)
    assert child.stdout is not None
    seen = 0
    for line in child.stdout:
        if line.startswith("processed"):
            seen += int(line.split()[1])
            if seen >= 15:
                break
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    committed_before = _committed(settings.kafka_bootstrap, group_id, src, 1)
    assert committed_before < seen, "the kill should have lost uncommitted progress"
    # a new consumer in the same group picks up from the last commit
    loop = BatchLoop(
        settings,
        LoopConfig([src], group_id, delivery="at-least-once"),
        EchoHandler(out),
        Producer(settings),
    )
    loop.run(max_messages=n - committed_before)
    got = read_all(settings.kafka_bootstrap, out, n + seen - committed_before, timeout=15)
    offsets = [int(dict(m.headers())["src-offset"]) for m in got]
    assert set(offsets) == set(range(n)), "every input has an output"
    assert len(offsets) > n, "the killed consumer's uncommitted work was redone (duplicates)"
    assert _committed(settings.kafka_bootstrap, group_id, src, 1) == n


def test_a_static_member_killed_gets_its_partitions_back_before_its_session_expires(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    """With ``STREAMSENSE_KAFKA_GROUP_INSTANCE_ID`` a restarted worker (same id) takes its
    partitions back at once; a dynamic member would wait out the dead one's session."""
    src, out = make_topic("in", partitions=2), make_topic("out")
    n = 40
    _produce(settings, src, [f"m{i}".encode() for i in range(n)])
    session_ms = 120_000
    env = {
        "STREAMSENSE_KAFKA_GROUP_INSTANCE_ID": "worker-0",
        "STREAMSENSE_KAFKA_SESSION_TIMEOUT_MS": str(session_ms),
    }
    child = _child(settings.kafka_bootstrap, src, out, group_id, 0.05, env=env)
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("processed"):
            break
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    restarted = settings.model_copy(
        update={"kafka_group_instance_id": "worker-0", "kafka_session_timeout_ms": session_ms}
    )
    loop = BatchLoop(
        restarted,
        LoopConfig([src], group_id, delivery="at-least-once"),
        EchoHandler(out),
        Producer(restarted),
    )
    start = time.monotonic()
    t, errors = _start_loop(restarted, loop)
    try:
        wait_for(lambda: len(loop.assignment) == 2, session_ms / 1000 / 2, "both partitions")
        took = time.monotonic() - start
        wait_for(lambda: _committed(settings.kafka_bootstrap, group_id, src, 2) == n, 60, "all")
    finally:
        loop.stop()
        t.join(30)
    assert errors == []
    assert took < session_ms / 1000 / 2, f"took {took:.1f} s: waited for the dead member"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    (group,) = admin.describe_consumer_groups([group_id], request_timeout=10).values()
    members = group.result(timeout=15).members
    assert [m.group_instance_id for m in members] == ["worker-0"], "one member, the same one"


def test_sigterm_drains_in_flight_work_and_commits(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    src, out = make_topic("in"), make_topic("out")
    n = 60
    _produce(settings, src, [f"m{i}".encode() for i in range(n)])
    child = _child(settings.kafka_bootstrap, src, out, group_id, 0.05)
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("processed"):
            break
    child.send_signal(signal.SIGTERM)
    rest = child.stdout.read()
    child.stdout.close()
    assert child.wait(30) == 0
    processed = int(rest.strip().splitlines()[-1].split()[1])
    assert 0 < processed < n
    committed = _committed(settings.kafka_bootstrap, group_id, src, 1)
    assert committed == processed, "every processed message is committed, no more"
    got = read_all(settings.kafka_bootstrap, out, processed, timeout=10)
    assert len(got) == processed


def test_two_consumers_split_partitions_and_hand_over(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    src, out = make_topic("in", partitions=4), make_topic("out")
    a = BatchLoop(
        settings,
        LoopConfig([src], group_id, delivery="at-least-once"),
        EchoHandler(out),
        Producer(settings),
    )
    b = BatchLoop(
        settings,
        LoopConfig([src], group_id, delivery="at-least-once"),
        EchoHandler(out),
        Producer(settings),
    )
    ta, ea = _start_loop(settings, a)
    wait_for(lambda: len(a.assignment) == 4, 30, "first consumer owning all 4 partitions")
    tb, eb = _start_loop(settings, b)
    wait_for(lambda: len(a.assignment) == 2 and len(b.assignment) == 2, 30, "a 2/2 split")
    assert set(a.assignment).isdisjoint(b.assignment)
    _produce(settings, src, [f"x{i}".encode() for i in range(100)])
    wait_for(lambda: a.processed + b.processed >= 100, 30, "100 messages processed")
    assert a.processed > 0 and b.processed > 0
    b.stop()
    tb.join(30)
    wait_for(lambda: len(a.assignment) == 4, 30, "hand-over of b's partitions to a")
    _produce(settings, src, [f"y{i}".encode() for i in range(40)])
    wait_for(lambda: a.processed + b.processed >= 140, 30, "all 140 processed")
    a.stop()
    ta.join(30)
    assert not ea and not eb
    assert _committed(settings.kafka_bootstrap, group_id, src, 4) == 140
    assert len(read_all(settings.kafka_bootstrap, out, 140)) == 140


def test_block_policy_bounds_in_flight_and_loses_nothing(
    settings: StreamsenseSettings, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("bp")
    p = Producer(settings, policy=BackpressurePolicy.BLOCK, max_in_flight=5, linger_ms=20)
    peak = 0
    for i in range(300):
        p.produce(topic, f"{i}".encode())
        peak = max(peak, p.in_flight)
    assert p.flush(30) == 0
    assert peak == 5
    assert p.dropped == 0
    got = read_all(settings.kafka_bootstrap, topic, 300)
    assert [int(m.value()) for m in got] == list(range(300))


def test_drop_oldest_keeps_the_newest_and_counts_drops(settings: StreamsenseSettings) -> None:
    """A broker that does not answer: only the newest frames stay queued, drops are counted."""
    dead = StreamsenseSettings(kafka_bootstrap="127.0.0.1:1", service_name="drop-test")
    p = Producer(
        dead,
        policy=BackpressurePolicy.DROP_OLDEST,
        max_in_flight=4,
        pending_limit=3,
        config={"message.timeout.ms": 2000, "log_level": 0},
    )
    for i in range(100):
        p.produce("frames-x", f"{i}".encode())
    assert p.in_flight == 4
    assert p.waiting == 3
    assert p.dropped == 100 - 4 - 3
    waiting = [int(r.value or b"-1") for r in p._pending]
    assert waiting == [97, 98, 99]
    # Closing gives up on what the dead broker never took: counted as failed, none forgotten.
    p.close(0.1)
    assert p.in_flight == 0 and p.waiting == 0
    assert p.failed == 4 + 3 and p.acked == 0
    p.close()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        p.produce("frames-x", b"late")


def test_drop_oldest_on_a_real_broker_delivers_in_order_with_the_last(
    settings: StreamsenseSettings, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("frames")
    p = Producer(
        settings,
        policy=BackpressurePolicy.DROP_OLDEST,
        max_in_flight=2,
        pending_limit=2,
        linger_ms=50,
    )
    for i in range(500):
        p.produce(topic, f"{i}".encode())
    assert p.flush(30) == 0
    got = [int(m.value()) for m in read_all(settings.kafka_bootstrap, topic, 500 - p.dropped)]
    assert p.dropped > 0
    assert len(got) + p.dropped == 500
    assert got == sorted(got) and got[-1] == 499


def test_slow_handler_does_not_trip_the_poll_interval(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    """max.poll.interval.ms of 6 s, 15 batches of 0.5 s: the loop polls often enough to stay in."""
    src, out = make_topic("in"), make_topic("out")
    _produce(settings, src, [f"m{i}".encode() for i in range(30)])
    cfg = LoopConfig(
        [src], group_id, max_batch=2, max_poll_interval_ms=6000, delivery="at-least-once"
    )
    settings = settings.model_copy(update={"kafka_session_timeout_ms": 6000})
    loop = BatchLoop(settings, cfg, EchoHandler(out, delay_s=0.5), Producer(settings))
    start = time.monotonic()
    loop.run(max_messages=30)
    assert time.monotonic() - start > 6, "the run must outlast max.poll.interval.ms"
    assert len(read_all(settings.kafka_bootstrap, out, 30)) == 30
    assert _committed(settings.kafka_bootstrap, group_id, src, 1) == 30
