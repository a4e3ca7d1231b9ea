"""Kafka refuses lines (records over the topic's ``max.message.bytes``): exit 1 with what Kafka
said and what to do about it (a restart alone fails the same way), logged once, not per line;
a file's refused lines stay unacknowledged in its checkpoint, so they go once it is fixed."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from tests.producers.conftest import topic_size
from tests.producers.test_text import append, events

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "streamsense.services.cli"]


def _small_topic(bootstrap: str) -> str:
    name = f"text-small.{uuid.uuid4().hex[:8]}"
    new = NewTopic(name, 1, 1, config={"max.message.bytes": "2000"})
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the answer
    admin.create_topics([new])[name].result()
    return name


def _incompressible(n: int) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def _produce(
    args: list[str], stack: dict[str, str], home: Path, stdin: bytes = b""
) -> tuple[int, str]:
    res = subprocess.run(
        [*CLI, "produce", "text", *args], input=stdin, capture_output=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2], check=False,
        env={**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"],
             "STREAMSENSE_HOME": str(home)},
    )  # fmt: skip
    return res.returncode, res.stderr.decode()


def test_lines_over_the_topics_size_limit_say_what_to_do(
    stack: dict[str, str], tmp_path: Path
) -> None:
    """Before: ``Kafka refused 3 line(s): KafkaError{...}`` for a file (what now?), and
    ``Kafka refused 3 line(s): see log`` for stdin, after one ERROR line per refused line."""
    topic = _small_topic(stack["bootstrap"])
    big = [_incompressible(3000) for _ in range(3)]
    stdin = "".join(f"{line}\n" for line in big).encode()
    code, stderr = _produce(["--stdin", "--topic", topic], stack, tmp_path, stdin)
    assert code == 1, stderr
    (line,) = [" ".join(x.split()) for x in stderr.splitlines() if x.startswith("error:")]
    assert line.startswith("error: Kafka refused 3 line(s): Broker: Message size too large")
    assert "larger than the topic's max.message.bytes: raise it" in line
    assert line.endswith("stdin cannot be read again")
    assert stderr.count("Kafka refused a line") == 1, "logged once, not per line"
    assert "delivery to" not in stderr

    log = tmp_path / "app.log"
    append(log, "small-0", big[0], "small-1")
    code, stderr = _produce(["--path", str(log), "--topic", topic], stack, tmp_path)
    assert code == 1, stderr
    (line,) = [" ".join(x.split()) for x in stderr.splitlines() if x.startswith("error:")]
    assert "Broker: Message size too large (the record is larger than" in line
    assert "the checkpoint holds only acknowledged lines: they go at the next start" in line

    # the topic fixed: the refused line and the ones after it go, none twice
    _raise_limit(stack["bootstrap"], topic)
    code, stderr = _produce(["--path", str(log), "--topic", topic], stack, tmp_path)
    assert code == 0, stderr
    assert [e.text for e in events(stack["bootstrap"], topic, 3)] == ["small-0", big[0], "small-1"]
    assert topic_size(stack["bootstrap"], topic) == 3


def _raise_limit(bootstrap: str, topic: str) -> None:
    entry = ConfigEntry("max.message.bytes", "1048576",
                        incremental_operation=AlterConfigOpType.SET)  # fmt: skip
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.incremental_alter_configs([resource]).values():
        fut.result()
