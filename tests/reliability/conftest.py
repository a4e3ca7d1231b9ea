"""Helpers for the reliability suite: brokers of its own, services as child processes."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from streamsense.services.local import procs
from streamsense.services.local.cluster import KafkaCluster
from streamsense.services.local.kafka import KafkaNode, ensure_jars
from streamsense.services.local.stack import kafka_answers
from streamsense.services.settings import StreamsenseSettings, default_home

REPO = Path(__file__).resolve().parents[2]


class OwnKafka:
    """A broker of the test's own on free ports, so stopping it disturbs no other test."""

    def __init__(self, node: KafkaNode) -> None:
        self.node = node
        self.pid: int | None = None

    @property
    def marker(self) -> str:
        return str(self.node.data_dir / "server.properties")

    def start(self, timeout: float = 90.0) -> float:
        """Start (format on first use) and wait until it answers; returns the seconds taken."""
        t0 = time.monotonic()
        self.pid = self.node.start(ensure_jars(default_home()))
        procs.wait_until(
            lambda: kafka_answers(self.node.bootstrap), timeout, "Kafka", self.node.log_path
        )
        return time.monotonic() - t0

    def stop(self) -> None:
        """SIGTERM (a controlled shutdown), SIGKILL after 20 s."""
        if self.pid is not None:
            procs.stop(self.pid, self.marker)
            self.pid = None


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[OwnKafka]:
    node = KafkaNode(tmp_path / "kafka", procs.free_port(), procs.free_port())
    broker = OwnKafka(node)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def _three_brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    c = KafkaCluster.plan(tmp_path_factory.mktemp("cluster"))
    c.start(ensure_jars(default_home()))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster(_three_brokers: KafkaCluster) -> KafkaCluster:
    """A three-node KRaft cluster (RF 3, min.insync.replicas 2), started once per session and
    shared by the tests that kill its nodes: each test gets it with every node running, so one
    that failed with a node down does not leave the next one a two-node cluster."""
    c = _three_brokers
    for n in c.nodes:
        pid = c.pids.get(n.node_id)
        if pid is None or not procs.is_ours(pid, str(n.data_dir / "server.properties")):
            c.pids.pop(n.node_id, None)
            c.start_node(n.node_id, ensure_jars(default_home()))
    return c


def service_env(settings: StreamsenseSettings, **extra: str) -> dict[str, str]:
    """The environment of a child service: the test's broker, Redis, topic prefix, store."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "STREAMSENSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "STREAMSENSE_REDIS_URL": settings.redis_url.get_secret_value(),
        "STREAMSENSE_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMSENSE_HOME": str(settings.home),
    }
    if settings.model_store is not None:
        env["STREAMSENSE_MODEL_STORE"] = str(settings.model_store)
    env.update(extra)
    return env


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m streamsense.services.cli ARGS`` with output to ``log``."""
    return procs.start_cli(args, log, env, cwd=REPO)


def stop_child(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(10)


class TopicReader:
    """Reads a topic from the beginning, incrementally, without a consumer group commit."""

    def __init__(
        self, bootstrap: str, topic: str, partitions: int, config: dict[str, object] | None = None
    ) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                **(config or {}),
            }
        )
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        self.messages: list[Message] = []

    def read(self, expect: int, timeout: float = 30.0) -> list[Message]:
        """Poll until ``expect`` messages were read in all (or ``timeout``); returns all."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < expect and time.monotonic() < deadline:
            self.poll()
        return self.messages

    def poll(self, timeout: float = 0.2) -> list[Message]:
        got = [m for m in self.consumer.consume(1000, timeout) if m.error() is None]
        self.messages.extend(got)
        return got

    def close(self) -> None:
        self.consumer.close()
