"""``streamsense local up | down | status``: Kafka (one node, or a three-node cluster) and
Redis, tracked in a state file."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import redis
from confluent_kafka.admin import AdminClient

from streamsense.services.exceptions import ServiceError
from streamsense.services.local import procs
from streamsense.services.local.cluster import KafkaCluster
from streamsense.services.local.kafka import KafkaNode, ensure_jars, kafka_version
from streamsense.services.local.redis import RedisNode

log = logging.getLogger(__name__)

DEFAULT_KAFKA_PORT = 9092
DEFAULT_REDIS_PORT = 6379


@dataclass
class StackState:
    kafka_pid: int
    kafka_port: int
    kafka_controller_port: int
    redis_pid: int
    redis_port: int
    kafka_version: str
    kafka_start_s: float
    #: the other nodes of a cluster: ``{"node_id", "pid", "port", "controller_port"}``
    more_kafka: list[dict[str, int]] = field(default_factory=list)

    @property
    def brokers(self) -> int:
        return 1 + len(self.more_kafka)

    @property
    def bootstrap(self) -> str:
        ports = [self.kafka_port, *(n["port"] for n in self.more_kafka)]
        return ",".join(f"127.0.0.1:{p}" for p in ports)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"


def kafka_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    hosts = [h.rpartition(":") for h in bootstrap.split(",")]
    if not any(procs.port_open(int(port), host) for host, _, port in hosts):
        return False  # don't let librdkafka log connection-refused lines while we wait
    try:
        md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout)
    except Exception:  # any failure means "not answering"
        return False
    return bool(md.brokers)


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


class LocalStack:
    """Processes and data under ``root`` (default ``~/.cache/streamsense/local``)."""

    def __init__(self, root: Path, cache: Path) -> None:
        self.root = root
        self.cache = cache
        self.state_path = root / "state.json"

    def state(self) -> StackState | None:
        if not self.state_path.exists():
            return None
        return StackState(**orjson.loads(self.state_path.read_bytes()))

    def _kafka(self, port: int, cport: int) -> KafkaNode:
        return KafkaNode(self.root / "kafka", port, cport)

    def _redis(self, port: int) -> RedisNode:
        return RedisNode(self.root / "redis", port)

    def up(
        self,
        kafka_port: int | None = None,
        redis_port: int | None = None,
        timeout: float = 90.0,
        brokers: int = 1,
    ) -> StackState:
        """Start both (or return the running pair); ports default to 9092/6379 when free.
        ``brokers=3``: a three-node KRaft cluster (the first node on ``kafka_port``)."""
        current = self.state()
        if current and self._alive(current):
            if current.brokers != brokers:
                msg = (
                    f"the local stack runs {current.brokers} Kafka broker(s), not {brokers}: "
                    "`streamsense local down` first"
                )
                raise ServiceError(msg)
            return current
        if current:
            self.down()
        if brokers != 1:
            return self._up_cluster(kafka_port, redis_port, brokers, timeout)
        libs = ensure_jars(self.cache)
        kport = kafka_port or _pick(DEFAULT_KAFKA_PORT)
        rport = redis_port or _pick(DEFAULT_REDIS_PORT)
        cport = procs.free_port()
        for port in (kport, rport):
            if not procs.port_free(port):
                msg = f"port {port} is taken; pass another port"
                raise ServiceError(msg)
        knode, rnode = self._kafka(kport, cport), self._redis(rport)
        t0 = time.monotonic()
        kpid = knode.start(libs)
        rpid = rnode.start()
        state = StackState(kpid, kport, cport, rpid, rport, kafka_version(), 0.0)
        self._write(state)  # written first, so `down` can stop a half-started stack
        procs.wait_until(lambda: redis_answers(rnode.url), 20, "Redis", rnode.log_path)
        procs.wait_until(lambda: kafka_answers(knode.bootstrap), timeout, "Kafka", knode.log_path)
        state.kafka_start_s = round(time.monotonic() - t0, 2)
        self._write(state)
        log.info(
            "Kafka %s on %s (%.1f s), Redis on %s",
            state.kafka_version,
            state.bootstrap,
            state.kafka_start_s,
            state.redis_url,
        )
        return state

    def _up_cluster(
        self, kafka_port: int | None, redis_port: int | None, brokers: int, timeout: float
    ) -> StackState:
        libs = ensure_jars(self.cache)
        kport = kafka_port or _pick(DEFAULT_KAFKA_PORT)
        rport = redis_port or _pick(DEFAULT_REDIS_PORT)
        ports = [kport, *(procs.free_port() for _ in range(brokers - 1))]
        cluster = KafkaCluster.plan(self.root, brokers, ports)
        rnode = self._redis(rport)
        first = cluster.nodes[0]
        state = StackState(0, kport, first.controller_port, 0, rport, kafka_version(), 0.0)
        t0 = time.monotonic()
        try:
            for n in cluster.nodes:
                cluster.pids[n.node_id] = n.start(libs)
                self._record(state, cluster)
            state.redis_pid = rnode.start()
            self._write(state)
            procs.wait_until(lambda: redis_answers(rnode.url), 20, "Redis", rnode.log_path)
            cluster.wait_brokers(brokers, timeout)
        except ServiceError:
            self.down()
            raise
        state.kafka_start_s = round(time.monotonic() - t0, 2)
        self._write(state)
        log.info("Kafka %s cluster of %d on %s (%.1f s), Redis on %s", state.kafka_version,
                 brokers, state.bootstrap, state.kafka_start_s, state.redis_url)  # fmt: skip
        return state

    def _record(self, state: StackState, cluster: KafkaCluster) -> None:
        """Written after every start, so `down` can stop a half-started cluster."""
        first = cluster.nodes[0]
        state.kafka_pid = cluster.pids.get(first.node_id, 0)
        state.more_kafka = [
            {"node_id": n.node_id, "pid": cluster.pids[n.node_id], "port": n.port,
             "controller_port": n.controller_port}
            for n in cluster.nodes[1:] if n.node_id in cluster.pids
        ]  # fmt: skip
        self._write(state)

    def down(self) -> list[str]:
        """Stop exactly the processes ``up`` started (checked by pid and command line)."""
        state = self.state()
        stopped: list[str] = []
        if state is None:
            return stopped
        data = "kafka" if not state.more_kafka else "kafka-1"
        if procs.stop(state.kafka_pid, str(self.root / data / "server.properties")):
            stopped.append(f"kafka (pid {state.kafka_pid})")
        for n in state.more_kafka:
            marker = str(self.root / f"kafka-{n['node_id']}" / "server.properties")
            if procs.stop(n["pid"], marker):
                stopped.append(f"kafka node {n['node_id']} (pid {n['pid']})")
        if procs.stop(state.redis_pid, f"127.0.0.1:{state.redis_port}"):
            stopped.append(f"redis (pid {state.redis_pid})")
        self.state_path.unlink(missing_ok=True)
        return stopped

    def status(self) -> tuple[StackState | None, bool, bool]:
        state = self.state()
        if state is None:
            return None, False, False
        return state, kafka_answers(state.bootstrap), redis_answers(state.redis_url)

    def _alive(self, s: StackState) -> bool:
        return kafka_answers(s.bootstrap) and redis_answers(s.redis_url)

    def _write(self, state: StackState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(asdict(state)))
        tmp.replace(self.state_path)


def _pick(preferred: int) -> int:
    return preferred if procs.port_free(preferred) else procs.free_port()
