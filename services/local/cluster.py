"""A three-node Kafka cluster on loopback, for the local stack and the tests that need one.

Each node is a combined KRaft node (``process.roles=broker,controller``): three JVMs, not six,
on a laptop with two cores, and the quorum is the same three voters, so killing one node
(broker and controller at once, as a machine failure would) leaves a majority that elects a
new leader for the metadata and for every partition it led. Topics get three replicas with
``min.insync.replicas=2``: an acknowledged write is on two nodes before any of them dies.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from streamsense.services.exceptions import ServiceError
from streamsense.services.local import procs
from streamsense.services.local.kafka import KafkaNode
from streamsense.services.settings import LibrdkafkaLog

log = logging.getLogger(__name__)

_QUIET = LibrdkafkaLog("local-cluster")
#: Each node's heap: three of them share the machine.
CLUSTER_HEAP = "-Xmx384m"


@dataclass
class KafkaCluster:
    root: Path
    nodes: list[KafkaNode] = field(default_factory=list)
    pids: dict[int, int] = field(default_factory=dict)

    @classmethod
    def plan(cls, root: Path, size: int = 3, ports: list[int] | None = None) -> KafkaCluster:
        """Nodes 1..size on free ports (or ``ports``), one cluster id, one voter set."""
        ports = ports or [procs.free_port() for _ in range(size)]
        cports = [procs.free_port() for _ in range(size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, c in enumerate(cports))
        cluster_id = str(uuid.uuid4())
        nodes = [
            KafkaNode(
                root / f"kafka-{i + 1}",
                ports[i],
                cports[i],
                node_id=i + 1,
                voters=voters,
                cluster_id=cluster_id,
                replicas=min(3, size),
                heap=CLUSTER_HEAP,
            )
            for i in range(size)
        ]
        return cls(root, nodes)

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def start(self, libs: Path, timeout: float = 120.0) -> float:
        """Start every node and wait until the cluster answers with all of them; seconds."""
        t0 = time.monotonic()
        for n in self.nodes:
            self.pids[n.node_id] = n.start(libs)
        self.wait_brokers(len(self.nodes), timeout)
        return time.monotonic() - t0

    def start_node(self, node_id: int, libs: Path, timeout: float = 90.0) -> float:
        """Start one node again (same ports and data) and wait until it is back."""
        t0 = time.monotonic()
        self.pids[node_id] = self.node(node_id).start(libs)
        self.wait_brokers(len(self.nodes), timeout)
        return time.monotonic() - t0

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: no controlled shutdown, its partitions' leadership moves."""
        pid = self.pids.pop(node_id)
        procs.kill(pid, str(self.node(node_id).data_dir / "server.properties"))

    def stop(self) -> None:
        for node_id, pid in list(self.pids.items()):
            procs.stop(pid, str(self.node(node_id).data_dir / "server.properties"))
            self.pids.pop(node_id, None)

    def _admin(self) -> AdminClient:
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "logger": _QUIET}
        return AdminClient(conf)

    def brokers(self, timeout: float = 5.0) -> set[int]:
        if not any(procs.port_open(n.port) for n in self.nodes):
            return set()  # nothing listens yet: spare librdkafka's connection-refused lines
        return set(self._admin().list_topics(timeout=timeout).brokers)

    def leader(self, topic: str, partition: int, timeout: float = 10.0) -> int:
        """The node leading ``topic[partition]`` (waits for a new topic's metadata)."""
        deadline = time.monotonic() + timeout
        while True:
            md = self._admin().list_topics(topic, timeout=timeout)
            part = md.topics[topic].partitions.get(partition)
            if part is not None and part.leader >= 0:
                return int(part.leader)
            if time.monotonic() > deadline:
                msg = f"{topic}[{partition}] has no leader after {timeout:.0f} s"
                raise ServiceError(msg)
            time.sleep(0.2)  # metadata of a just-created topic propagates in milliseconds

    def wait_brokers(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(self.brokers(timeout=2.0)) >= count:
                    return
            except Exception:  # not answering yet
                log.debug("cluster not answering yet", exc_info=True)
            time.sleep(0.2)  # polling a starting JVM; there is nothing to wait on instead
        logs = ", ".join(str(n.log_path) for n in self.nodes)
        msg = (
            f"the Kafka cluster did not answer with {count} brokers in {timeout:.0f} s; see {logs}"
        )
        raise ServiceError(msg)
