"""A worker's first hour: the real CLI as a subprocess, failing loudly and clearly.

Expected errors are one line on stderr that names what the user typed and the fix, exit 2 for
usage and configuration; a running worker whose Kafka is unreachable or whose topic is missing
keeps running with a red ``/healthz`` that says why, and a quiet log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from streamsense.services.kafka.topics import ensure_topics
from streamsense.services.local import procs
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for

pytestmark = pytest.mark.models


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamsense.services.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, res.stderr
    return errors[0]


@pytest.fixture
def env(stack: dict[str, str], zoo_store: Path) -> dict[str, str]:
    """Topics of the test's own (a prefix), created from the spec: a worker refuses to start
    on missing ones."""
    prefix = f"st{uuid.uuid4().hex[:8]}."
    ensure_topics(StreamsenseSettings(kafka_bootstrap=stack["bootstrap"], topic_prefix=prefix))
    return {
        "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"],
        "STREAMSENSE_MODEL_STORE": str(zoo_store),
        "STREAMSENSE_TOPIC_PREFIX": prefix,
    }


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (
            ["worker", "detect", "--model", "no-such-model"],
            {},
            "no model named 'no-such-model'",
        ),
        (
            ["worker", "detect", "--model", "sentiment-tweets"],
            {},
            "--model sentiment-tweets: it is a sentiment model and this is a detect worker",
        ),
        (
            ["worker", "sentiment", "--max-batch", "0"],
            {},
            "--max-batch=0: Input should be greater than or equal to 1",
        ),
        (
            ["worker", "sentiment"],
            {"STREAMSENSE_WORKER_MAX_WAIT_MS": "soon"},
            "STREAMSENSE_WORKER_MAX_WAIT_MS='soon': Input should be a valid integer",
        ),
    ],
    ids=["unknown-model", "wrong-task", "max-batch-0", "bad-variable"],
)
def test_start_up_errors_are_one_line_with_exit_2(
    env: dict[str, str], args: list[str], extra: dict[str, str], message: str
) -> None:
    res = _cli(*args, env={**env, **extra})
    assert res.returncode == 2, res.stderr
    line = _one_error_line(res)
    assert message in line
    if "no-such-model" in args:
        assert "streamsense models list" in line


def test_a_metrics_port_in_use_fails_before_the_model_loads(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = _cli("worker", "sentiment", env={**env, "STREAMSENSE_METRICS_PORT": str(port)})
    assert res.returncode == 2
    line = _one_error_line(res)
    assert f"STREAMSENSE_METRICS_PORT={port}" in line and "in use" in line
    assert "TensorFlow runs on" not in res.stderr  # refused before any model was loaded


@contextmanager
def _worker(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = procs.free_port()
    proc = procs.start_cli(
        ["worker", "sentiment"],
        log,
        {**env, "STREAMSENSE_METRICS_PORT": str(port), "STREAMSENSE_LOG_SUMMARY_S": "1"},
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _health(port: int) -> tuple[int, dict[str, object]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return None


def _red_because(port: int, words: str) -> bool:
    got = _health(port)
    return got is not None and got[0] == 503 and words in " ".join(got[1]["problems"])  # type: ignore[arg-type]


def test_a_worker_with_kafka_unreachable_is_red_quiet_and_stops_cleanly(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    wrong = {**env, "STREAMSENSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{procs.free_port()}",
             "STREAMSENSE_KAFKA_UNREACHABLE_GRACE_S": "2"}  # fmt: skip
    with _worker(wrong, log) as (proc, port):
        wait_for(lambda: _red_because(port, "unreachable for"), 90, "red: kafka unreachable")
        lines_then = len(log.read_text().splitlines())
        time.sleep(3)  # librdkafka retries several times a second meanwhile: count the lines
        assert _red_because(port, "unreachable for")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    text = log.read_text()
    # librdkafka retries several times a second: one line per state change, not per retry
    assert text.count("is unreachable") == 1, text
    assert len(text.splitlines()) - lines_then < 15, text
    assert "oneDNN" not in text and "absl::InitializeLog" not in text  # no TensorFlow banner
    assert "msg/s" in text  # the periodic summary line (STREAMSENSE_LOG_SUMMARY_S=1)


def test_a_worker_whose_topics_are_missing_refuses_to_start_with_the_fix(
    env: dict[str, str],
) -> None:
    """Missing at start: one line, exit 1, before any model loads (a topic deleted while the
    worker runs turns its health red instead: tests/integration/test_loop_health.py)."""
    res = _cli("worker", "sentiment", env={**env, "STREAMSENSE_TOPIC_PREFIX": "nosuch."})
    assert res.returncode == 1
    line = _one_error_line(res)
    assert "nosuch.results.sentiment does not exist" in line
    assert "Run `streamsense topics create`" in line
    assert "TensorFlow runs on" not in res.stderr
