"""kill -9 the text producer while it follows a growing file, restart it: every line is in the
topic exactly once, in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from streamsense.schemas.registry import decode
from streamsense.schemas.text import TextEvent
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.producers.conftest import topic_size

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 6000


def start(
    root: Path, bootstrap: str, log: Path, ckpt: Path, topic: str, out: IO[str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamsense.services.cli", "produce", "text", "--path", str(log),
         "--follow", "--checkpoint", str(ckpt), "--topic", topic],
        cwd=root, stdout=out, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": bootstrap,
             "STREAMSENSE_TEXT_POLL_INTERVAL_S": "0.1",
             "STREAMSENSE_TEXT_CHECKPOINT_INTERVAL_S": "0.2"},
    )  # fmt: skip


def test_kill_9_mid_stream_then_restart_delivers_every_line_exactly_once(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path, repo_root: Path
) -> None:
    bootstrap = stack["bootstrap"]
    topic = make_topic("text")
    log, ckpt = tmp_path / "app.log", tmp_path / "ckpt.json"
    log.touch()
    written = 0
    done = threading.Event()

    def writer() -> None:  # ~1,500 lines/s in small bursts, like a busy service
        nonlocal written
        with open(log, "a", encoding="utf-8") as fh:
            while written < TOTAL:
                fh.writelines(f"line {i:05d} payment ok\n" for i in range(written, written + 30))
                fh.flush()
                written += 30
                time.sleep(0.02)
        done.set()

    first_log, second_log = open(tmp_path / "first.out", "w"), open(tmp_path / "second.out", "w")
    w = threading.Thread(target=writer, daemon=True)
    first = start(repo_root, bootstrap, log, ckpt, topic, first_log)
    try:
        wait_for(ckpt.exists, 30, "the producer to start (its checkpoint is written first)")
        w.start()
        wait_for(lambda: topic_size(bootstrap, topic) >= 1500, 30, "1500 lines in the topic")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = topic_size(bootstrap, topic)
        assert at_kill < TOTAL and written < TOTAL, "the kill must land mid-stream"
        assert ckpt.exists(), "checkpoints were written while running"
        second = start(repo_root, bootstrap, log, ckpt, topic, second_log)
        try:
            assert done.wait(30)
            wait_for(lambda: topic_size(bootstrap, topic) >= TOTAL, 40, f"{TOTAL} lines")
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
        finally:
            second.kill()
    finally:
        first.kill()
        w.join(30)
        first_log.close()
        second_log.close()
    restart_out = (tmp_path / "second.out").read_text()
    assert "resuming" in restart_out, restart_out[-3000:]
    print(next((ln for ln in restart_out.splitlines() if "reconcile" in ln), "no reconcile"))
    assert topic_size(bootstrap, topic) == TOTAL, "no line was sent twice"
    got = [decode(m.value(), TextEvent) for m in read_all(bootstrap, topic, TOTAL, timeout=30)]
    assert [e.text for e in got] == [f"line {i:05d} payment ok" for i in range(TOTAL)]
    assert [e.seq for e in got] == list(range(TOTAL))
    assert [e.position for e in got] == [i * 22 for i in range(TOTAL)]
