"""A single-node Apache Kafka broker in KRaft mode from Maven Central jars.

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

from services.exceptions import ServiceError
from services.local import procs

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
class KafkaNode:
    data_dir: Path
    port: int
    controller_port: int
    host: str = "127.0.0.1"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "kafka.log"

    def properties(self) -> str:
        h = self.host
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{h}:{self.controller_port}",
                f"listeners=PLAINTEXT://{h}:{self.port},CONTROLLER://{h}:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://{h}:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.data_dir / 'logs'}",
                "num.partitions=3",
                "auto.create.topics.enable=true",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=5",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "message.max.bytes=16777216",
                "log.retention.hours=24",
                "log.segment.bytes=268435456",
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
                str(uuid.uuid4()),
                "-c",
                str(props),
                "--ignore-formatted",
            ]
            res = subprocess.run(fmt, capture_output=True, text=True, check=False)  # noqa: S603
            if res.returncode != 0:
                msg = f"formatting the KRaft log dir failed: {res.stdout}{res.stderr}"
                raise ServiceError(msg)
        cmd = [
            "java",
            HEAP,
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
