"""Apache Kafka brokers in KRaft mode from Maven Central jars: one node, or the nodes of a
loopback cluster (:mod:`streamsense.services.local.cluster`).

The jars are resolved once with ``mvn dependency:copy-dependencies`` from ``deploy/local/pom.xml``
into a cache outside the repo; the broker runs ``java -cp 'libs/*' kafka.Kafka`` like the
distribution's thin scripts do, with a small heap.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from streamsense.services.exceptions import ServiceError
from streamsense.services.local import procs

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "deploy" / "local" / "pom.xml"
HEAP = "-Xmx512m"


def kafka_version(pom: Path = POM) -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom.read_text())
    if not match:
        msg = f"no <kafka.version> in {pom}"
        raise ServiceError(msg)
    return match.group(1)


def ensure_jars(cache: Path, pom: Path = POM) -> Path:
    """Resolve the broker and tools jars into ``cache/kafka-<version>/libs`` (once)."""
    libs = cache / f"kafka-{kafka_version(pom)}" / "libs"
    done = libs / ".complete"
    if done.exists():
        return libs
    if shutil.which("mvn") is None:
        msg = "Maven (mvn) is needed to fetch the Kafka jars: apt-get install maven"
        raise ServiceError(msg)
    if shutil.which("java") is None:
        msg = "Java 17+ is needed to run Kafka: apt-get install openjdk-17-jre-headless"
        raise ServiceError(msg)
    log.info("resolving Kafka %s jars into %s", kafka_version(pom), libs)
    tmp = libs.with_name("libs.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
        "-DincludeScope=runtime",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if res.returncode != 0:
        msg = f"mvn could not resolve the Kafka jars:\n{res.stdout[-3000:]}{res.stderr[-2000:]}"
        raise ServiceError(msg)
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    done.touch()
    return libs


@dataclass(frozen=True)
class SecureListener:
    """A second, ``SASL_SSL`` listener with SCRAM-SHA-512 users, TLS from PEM files.

    ``cert`` is the broker's certificate chain, ``key`` its unencrypted PKCS#8 private key,
    ``ca`` the CA that clients trust. The users are written into the KRaft metadata when the
    log dir is formatted (``StorageTool format --add-scram``), so they exist from the first start.
    """

    port: int
    ca: Path
    cert: Path
    key: Path
    users: tuple[tuple[str, str], ...]

    def properties(self, host: str) -> list[str]:
        return [
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.certificate.chain={_inline_pem(self.cert)}",
            f"ssl.keystore.key={_inline_pem(self.key)}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.certificates={_inline_pem(self.ca)}",
            "ssl.client.auth=none",
        ]

    def scram_args(self) -> list[str]:
        return [
            arg
            for name, password in self.users
            for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")
        ]


def _inline_pem(path: Path) -> str:
    """PEM text as one properties line (``\\n`` escapes, which ``Properties.load`` expands)."""
    return path.read_text().strip().replace("\n", "\\n")


@dataclass(frozen=True)
class KafkaNode:
    data_dir: Path
    port: int
    controller_port: int
    host: str = "127.0.0.1"
    secure: SecureListener | None = None
    node_id: int = 1
    #: ``controller.quorum.voters`` of a cluster (``id@host:port,...``); None: this node alone
    voters: str | None = None
    #: the cluster id every node of a cluster formats its log dir with
    cluster_id: str | None = None
    #: replicas of Kafka's own topics (offsets, transactions) and of new topics
    replicas: int = 1
    heap: str = HEAP

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "kafka.log"

    @property
    def secure_bootstrap(self) -> str:
        if self.secure is None:
            msg = "this broker has no SASL_SSL listener"
            raise ServiceError(msg)
        return f"{self.host}:{self.secure.port}"

    def properties(self) -> str:
        h = self.host
        listeners = f"PLAINTEXT://{h}:{self.port},CONTROLLER://{h}:{self.controller_port}"
        advertised = f"PLAINTEXT://{h}:{self.port}"
        protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        if self.secure is not None:
            listeners += f",SASL_SSL://{h}:{self.secure.port}"
            advertised += f",SASL_SSL://{h}:{self.secure.port}"
            protocols += ",SASL_SSL:SASL_SSL"
        voters = self.voters or f"{self.node_id}@{h}:{self.controller_port}"
        min_isr = 2 if self.replicas >= 3 else 1
        return "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={self.node_id}",
                f"controller.quorum.voters={voters}",
                f"listeners={listeners}",
                f"advertised.listeners={advertised}",
                "controller.listener.names=CONTROLLER",
                f"listener.security.protocol.map={protocols}",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.data_dir / 'logs'}",
                "num.partitions=3",
                # topics come from the spec (`streamsense topics create`), never from a typo
                "auto.create.topics.enable=false",
                f"offsets.topic.replication.factor={self.replicas}",
                "offsets.topic.num.partitions=5",
                f"transaction.state.log.replication.factor={self.replicas}",
                f"transaction.state.log.min.isr={min_isr}",
                f"default.replication.factor={self.replicas}",
                f"min.insync.replicas={min_isr}",
                "group.initial.rebalance.delay.ms=0",
                # a dead process's open transaction holds back read_committed readers until it
                # is aborted: look for timed-out ones every second, not every 10 s
                "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000",
                "message.max.bytes=16777216",
                "log.retention.hours=24",
                "log.segment.bytes=268435456",
                *(self.secure.properties(h) if self.secure is not None else []),
                "",
            ]
        )

    def start(self, libs: Path) -> int:
        """Format the KRaft log dir (first time only) and start the broker; returns its pid."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        props.write_text(self.properties())
        cp = f"{libs}/*"
        if not (self.data_dir / "logs" / "meta.properties").exists():
            fmt = [
                "java",
                "-cp",
                cp,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                self.cluster_id or str(uuid.uuid4()),
                "-c",
                str(props),
                "--ignore-formatted",
                *(self.secure.scram_args() if self.secure is not None else []),
            ]
            res = subprocess.run(fmt, capture_output=True, text=True, check=False)  # noqa: S603
            if res.returncode != 0:
                msg = f"formatting the KRaft log dir failed: {res.stdout}{res.stderr}"
                raise ServiceError(msg)
        cmd = [
            "java",
            self.heap,
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            "-cp",
            cp,
            "kafka.Kafka",
            str(props),
        ]
        return procs.spawn(cmd, self.log_path, cwd=self.data_dir)
