"""The broker stopped (SIGTERM) and started again on the same ports and data dir mid-stream:
the producer buffers and retries, the batch loop resumes, nothing is lost or written twice."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import Producer
from streamsense.services.local import procs
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.kafka_helpers import EchoHandler, read_all
from tests.reliability.conftest import OwnKafka

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATE = 400
TOTAL = 6000  # 15 s of load


def test_broker_restart_mid_stream_loses_nothing(own_kafka: OwnKafka) -> None:
    settings = StreamsenseSettings(
        kafka_bootstrap=own_kafka.node.bootstrap, service_name="restart-test"
    )
    src, out = f"in.{uuid.uuid4().hex[:6]}", f"out.{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    new = [NewTopic(t, num_partitions=2, replication_factor=1) for t in (src, out, src + ".dlq")]
    for fut in admin.create_topics(new).values():
        fut.result()

    acked: list[int] = []
    errors: list[KafkaError] = []
    sent = 0

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            acked.append(int(msg.value() or b"-1"))
        else:
            errors.append(err)

    def produce() -> None:
        nonlocal sent
        p = Producer(settings, linger_ms=5, config={"log_level": 0})
        start = time.monotonic()
        for i in range(TOTAL):
            due = start + i / RATE
            while time.monotonic() < due:
                p.poll(min(0.005, max(0.0, due - time.monotonic())))
            p.produce(src, str(i).encode(), key=f"k{i % 7}", on_delivery=on_delivery)
            sent = i + 1
        assert p.flush(120) == 0

    group = f"g-{uuid.uuid4().hex[:6]}"
    loop = BatchLoop(
        settings,
        LoopConfig([src], group, consumer_config={"log_level": 0}, delivery="at-least-once"),
        EchoHandler(out),
        Producer(settings, config={"log_level": 0}),
    )
    loop_errors: list[BaseException] = []

    def consume() -> None:
        try:
            loop.run()
        except BaseException as exc:
            loop_errors.append(exc)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    wait_for(lambda: loop.assignment, 30, "the loop's assignment")
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        wait_for(lambda: len(acked) >= 1500 and loop.processed >= 1000, 30, "steady traffic")
        t_stop = time.monotonic()
        own_kafka.stop()  # SIGTERM: controlled shutdown
        stop_s = time.monotonic() - t_stop
        assert not procs.port_open(own_kafka.node.port)
        acked_while_down = len(acked)
        wait_for(lambda: sent >= acked_while_down + 800, 10, "2 s of records buffered")
        buffered = sent - len(acked)
        start_s = own_kafka.start()
        back = time.monotonic()
        outage_s = back - t_stop
        wait_for(lambda: len(acked) > acked_while_down + buffered, 60, "the backlog acknowledged")
        resume_s = time.monotonic() - back
        producer.join(120)
        assert not producer.is_alive()
        wait_for(
            lambda: loop.processed >= TOTAL,
            60,
            "every record processed",
            lambda: (loop.processed, loop.health()),
        )
    finally:
        loop.stop()
        consumer.join(60)
    print(
        f"\nbroker restart: outage {outage_s:.1f} s (SIGTERM stop {stop_s:.1f} s, start "
        f"{start_s:.1f} s), {buffered} records buffered by the producer, backlog acknowledged "
        f"{resume_s:.1f} s after the broker answered again"
    )
    assert not loop_errors, loop_errors
    assert errors == [], "no record was finally refused"
    assert sorted(acked) == list(range(TOTAL))
    # idempotent producer: the retried records are in the log exactly once
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        ends = [c.get_watermark_offsets(TopicPartition(src, p), timeout=10)[1] for p in (0, 1)]
        out_ends = [c.get_watermark_offsets(TopicPartition(out, p), timeout=10)[1] for p in (0, 1)]
        committed = c.committed([TopicPartition(src, p) for p in range(2)], timeout=10)
    finally:
        c.close()
    assert sum(ends) == TOTAL
    got = read_all(settings.kafka_bootstrap, src, TOTAL, timeout=30)
    assert sorted(int(m.value()) for m in got) == list(range(TOTAL))
    # at-least-once through the loop: every record has an output, all input offsets committed
    # (an outage longer than the session timeout loses the assignment: what was not committed
    # then is processed again, so there can be more outputs than inputs; read them all)
    outputs = read_all(settings.kafka_bootstrap, out, sum(out_ends), timeout=30)
    assert {int(m.value()) for m in outputs} == set(range(TOTAL))
    assert sum(tp.offset for tp in committed) == TOTAL
