"""A command that waits on an unreachable Kafka says so at once and stops on SIGTERM within
seconds. Before: ``streamsense topics create`` and ``streamsense analytics`` printed nothing
for 30 s, and analytics had no health port while it waited (a probe saw connection refused,
not "starting"), then exited 1 where the worker and the sink wait."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from streamsense.services.local import procs
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1


@contextmanager
def _started(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamsense.services.cli", *args],
            env={**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": UNREACHABLE, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _stops_on_sigterm(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    proc.wait(10)
    assert time.monotonic() - t0 < 5  # noqa: PLR2004


def _health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:  # noqa: S310
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:  # 503: red, with the body
        return dict(json.loads(exc.read()))
    except OSError:
        return None


def test_topics_create_says_what_it_waits_for(tmp_path: Path) -> None:
    log = tmp_path / "topics.log"
    with _started(["topics", "create"], {"STREAMSENSE_HOME": str(tmp_path)}, log) as proc:
        wait_for(lambda: f"on Kafka at {UNREACHABLE}" in log.read_text(), 15, "a waiting line")
        assert proc.poll() is None  # still waiting: the line came first
        assert "gives up after" in log.read_text()
        _stops_on_sigterm(proc)


def test_analytics_serves_red_health_while_waiting_for_kafka(tmp_path: Path) -> None:
    port = procs.free_port()
    env = {"STREAMSENSE_HOME": str(tmp_path), "STREAMSENSE_METRICS_PORT": str(port)}
    log = tmp_path / "analytics.log"
    with _started(["analytics"], env, log) as proc:
        wait_for(lambda: _health(port) is not None, 15, "the health port while Kafka is away")
        health = _health(port)
        assert health is not None
        assert health["ok"] is False
        assert health["problems"] == ["starting"]
        assert f"Kafka at {UNREACHABLE}" in log.read_text()
        assert proc.poll() is None
        _stops_on_sigterm(proc)
    assert "Traceback" not in log.read_text()


def test_analytics_waits_for_kafka_like_the_other_services_and_says_so(tmp_path: Path) -> None:
    """Before: exit 1 after 30 s, so a broker a minute late left analytics down for good (the
    worker and the sink wait with red health)."""
    port = procs.free_port()
    env = {"STREAMSENSE_HOME": str(tmp_path), "STREAMSENSE_METRICS_PORT": str(port)}
    log = tmp_path / "analytics.log"
    with _started(["analytics"], env, log) as proc:
        wait_for(lambda: "(attempt 2," in log.read_text(), 60, "a second attempt, said")
        assert proc.poll() is None, log.read_text()
        assert _health(port) == {"ok": False, "problems": ["starting"]}
        _stops_on_sigterm(proc)
    text = log.read_text()
    assert f"cannot reach Kafka at {UNREACHABLE}" in text
    assert "check STREAMSENSE_KAFKA_BOOTSTRAP" in text
    assert "Traceback" not in text and "error:" not in text
