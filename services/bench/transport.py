"""Our producer against Kafka's own ProducerPerformance, same broker, record size, acks, codec.

Rounds alternate (ours, Kafka's, ours, ...) so both see the same machine state; medians are
reported.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.services.exceptions import ServiceError
from streamsense.services.kafka.producer import Producer
from streamsense.services.local.kafka import ensure_jars, kafka_version
from streamsense.services.settings import StreamsenseSettings

PERF_CLASS = "org.apache.kafka.tools.ProducerPerformance"


def _fresh_topic(settings: StreamsenseSettings, tag: str) -> str:
    name = f"{settings.topic_prefix}bench.transport.{tag}.{uuid.uuid4().hex[:8]}"
    admin = AdminClient(settings.librdkafka_config())
    fut = admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=1,
                replication_factor=-1,
                config={"max.message.bytes": str(16 * 1024 * 1024)},
            )
        ]
    )[name]
    fut.result()
    return name


def _delete_topics(settings: StreamsenseSettings, names: list[str]) -> None:
    admin = AdminClient(settings.librdkafka_config())
    for fut in admin.delete_topics(names).values():
        fut.result()


def run_ours(
    settings: StreamsenseSettings, topic: str, records: int, size: int, acks: str, compression: str
) -> float:
    producer = Producer(settings, compression=compression, config={"acks": acks})
    payload = os.urandom(size)
    start = time.perf_counter()
    for _ in range(records):
        producer.produce(topic, payload)
    left = producer.flush(120)
    elapsed = time.perf_counter() - start
    if left or producer.failed:
        msg = f"our producer left {left} undelivered, {producer.failed} failed"
        raise ServiceError(msg)
    return records / elapsed


def run_kafka_perf(
    libs: Path, bootstrap: str, topic: str, records: int, size: int, acks: str, compression: str
) -> float:
    cmd = [
        "java",
        "-Xmx1g",
        "-cp",
        f"{libs}/*",
        PERF_CLASS,
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        f"acks={acks}",
        f"compression.type={compression}",
        "enable.idempotence=true",
        f"max.request.size={16 * 1024 * 1024}",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)  # noqa: S603
    # final line: "N records sent, X records/sec (Y MB/sec), ..."
    found = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", res.stdout)
    if res.returncode != 0 or not found or int(found[-1][0]) != records:
        msg = f"ProducerPerformance failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        raise ServiceError(msg)
    return float(found[-1][1])


def run(
    settings: StreamsenseSettings,
    record_bytes: int,
    records: int | None = None,
    rounds: int = 3,
    acks: str = "all",
    compression: str = "none",
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    n = records or max(500, min(200_000, 400_000_000 // max(record_bytes, 1)))
    libs = ensure_jars(settings.home)
    ours: list[float] = []
    theirs: list[float] = []
    topics: list[str] = []
    try:
        for r in range(rounds):
            t = _fresh_topic(settings, "ours")
            topics.append(t)
            progress(f"round {r + 1}/{rounds}: streamsense producer, {n} x {record_bytes} B")
            ours.append(run_ours(settings, t, n, record_bytes, acks, compression))
            t = _fresh_topic(settings, "kafka")
            topics.append(t)
            progress(f"round {r + 1}/{rounds}: Kafka ProducerPerformance, {n} x {record_bytes} B")
            theirs.append(
                run_kafka_perf(
                    libs, settings.kafka_bootstrap, t, n, record_bytes, acks, compression
                )
            )
    finally:
        if topics:
            _delete_topics(settings, topics)
    o, k = statistics.median(ours), statistics.median(theirs)
    return {
        "benchmark": "transport",
        "record_bytes": record_bytes,
        "records_per_round": n,
        "rounds": rounds,
        "acks": acks,
        "compression": compression,
        "kafka_version": kafka_version(),
        "ours_msgs_per_s": round(o, 1),
        "kafka_perf_msgs_per_s": round(k, 1),
        "ratio": round(o / k, 3),
        "ours_runs": [round(x, 1) for x in ours],
        "kafka_perf_runs": [round(x, 1) for x in theirs],
        "ours_mb_per_s": round(o * record_bytes / 1e6, 1),
        "load": "one process producing pre-built random records as fast as acks allow",
    }
