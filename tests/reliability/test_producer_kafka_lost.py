"""The broker goes away while ``streamsense produce text --stdin`` runs: within its Kafka timeout
the producer exits 1 with one line that counts the lines Kafka never acknowledged, and says they
cannot be sent again. With the broker back, the topic holds exactly the acknowledged lines: none
lost silently, none reported safe that was not."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.schemas.registry import decode
from streamsense.schemas.text import TextEvent
from tests.conftest import wait_for
from tests.reliability.conftest import REPO, OwnKafka, TopicReader

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMEOUT_S = 4


def test_stdin_producer_exits_1_and_counts_what_kafka_never_acknowledged(
    own_kafka: OwnKafka, tmp_path: Path
) -> None:
    bootstrap = own_kafka.node.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("text", 1, 1)])["text"].result()
    err = (tmp_path / "stderr.txt").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamsense.services.cli", "produce", "text", "--stdin",
            "--source-id", "chat", "--kafka-timeout", str(TIMEOUT_S),
        ],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
        env={**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": bootstrap,
             "STREAMSENSE_HOME": str(tmp_path)},
    )  # fmt: skip
    assert proc.stdin is not None
    reader = TopicReader(bootstrap, "text", 1)
    try:
        proc.stdin.write(b"".join(f"line {i}\n".encode() for i in range(50)))
        proc.stdin.flush()
        wait_for(lambda: len(reader.poll()) >= 0 and len(reader.messages) == 50, 60, "50 lines")
        reader.close()
        own_kafka.stop()
        stopped = time.monotonic()
        proc.stdin.write(b"".join(f"line {i}\n".encode() for i in range(50, 80)))
        proc.stdin.flush()
        code = proc.wait(TIMEOUT_S + 30)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        err.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == 1, stderr
    assert len(errors) == 1, stderr
    assert f"Kafka at {bootstrap} acknowledged nothing for {TIMEOUT_S} s" in errors[0]
    assert "30 line(s) from stdin not acknowledged" in errors[0]
    assert "stdin cannot be read again" in errors[0]
    assert "sent again" not in stderr
    assert took < TIMEOUT_S + 20, f"{took:.1f} s"

    own_kafka.start()
    again = TopicReader(bootstrap, "text", 1)
    try:
        wait_for(lambda: len(again.poll()) >= 0 and len(again.messages) >= 50, 60, "the topic")
        again.poll(1.0)
        texts = [decode(m.value(), TextEvent).text for m in again.messages]
    finally:
        again.close()
    assert texts == [f"line {i}" for i in range(50)], "exactly the acknowledged lines"
