"""The downstream examples in examples/ run as a user runs them, against real data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.conftest import TEXTS, Pipeline
from tests.sink import factory

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _env(p: Pipeline) -> dict[str, str]:
    s = p.sink_settings
    return {
        **os.environ,
        "STREAMSENSE_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "STREAMSENSE_REDIS_URL": s.redis_url.get_secret_value(),
        "STREAMSENSE_TOPIC_PREFIX": s.topic_prefix,
        "STREAMSENSE_REDIS_PREFIX": s.redis_prefix,
    }


def test_kafka_results_consumer(pipeline: Pipeline) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "consume_results.py"),
            "--topic",
            "results.sentiment",
            "--max",
            "20",
            "--idle-timeout",
            "10",
        ],
        env=_env(pipeline),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [ln for ln in out.stdout.splitlines() if " sentiment=" in ln]
    assert len(lines) == 20, out.stdout + out.stderr
    assert sum(ln.startswith(TEXTS[0]) for ln in lines) == 10
    assert "model=sentiment@3" in lines[0]

    det = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "consume_results.py"),
            "--topic",
            "results.detections",
            "--max",
            "1",
            "--idle-timeout",
            "10",
        ],
        env=_env(pipeline),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "detections=[person:0.90, person:0.80]" in det.stdout


def test_redis_stream_reader_reads_history_and_follows_live(pipeline: Pipeline) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "read_redis_stream.py"),
            "sentiment",
            TEXTS[1],
            "--max",
            "10",
            "--block-ms",
            "1000",
        ],
        env=_env(pipeline),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.count(f"SentimentResult {TEXTS[1]}") == 10, out.stdout + out.stderr

    follower = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "read_redis_stream.py"),
            "sentiment",
            "live-src",
            "--from",
            "$",
            "--max",
            "3",
            "--block-ms",
            "20000",
        ],
        env=_env(pipeline),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline().startswith("following ")
        pipeline.produce(
            [factory.result_record(factory.sentiment("live-src", i)) for i in range(3)]
        )
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0, stderr
    assert stdout.count("SentimentResult live-src") == 3, stdout + stderr
