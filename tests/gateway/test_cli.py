"""``streamsense sink redis`` and ``streamsense gateway`` as processes: health on the metrics
port (what the Kubernetes probes call), a result through both, clean exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from streamsense.services.local import procs
from tests.conftest import wait_for
from tests.sink import factory

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@contextmanager
def _service(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamsense.services.cli", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_sink_and_gateway_processes(stack: dict[str, str], tmp_path: Path) -> None:
    s = factory.sink_settings(stack["bootstrap"], stack["redis_url"], "cli")
    common = {
        "STREAMSENSE_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "STREAMSENSE_REDIS_URL": stack["redis_url"],
        "STREAMSENSE_TOPIC_PREFIX": s.topic_prefix,
        "STREAMSENSE_REDIS_PREFIX": s.redis_prefix,
    }
    sink_metrics, gw_port, gw_metrics = procs.free_port(), procs.free_port(), procs.free_port()
    sink_env = {
        **common,
        "STREAMSENSE_SINK_GROUP": s.sink_group,
        "STREAMSENSE_METRICS_PORT": str(sink_metrics),
    }
    gw_env = {**common, "STREAMSENSE_METRICS_PORT": str(gw_metrics)}
    with (
        _service(["sink", "redis"], sink_env, tmp_path / "sink.log") as sink,
        _service(["gateway", "--port", str(gw_port)], gw_env, tmp_path / "gw.log") as gateway,
    ):
        wait_for(lambda: _healthy(sink_metrics), 60, "the sink's /healthz")
        wait_for(lambda: _healthy(gw_metrics), 30, "the gateway's /healthz on the metrics port")
        assert (
            "streamsense_gateway_ws_clients"
            in httpx.get(f"http://127.0.0.1:{gw_metrics}/metrics", timeout=5).text
        )

        factory.produce(s, [factory.result_record(factory.sentiment("cli-src", 1))])
        url = f"http://127.0.0.1:{gw_port}/api/latest/sentiment/cli-src"
        wait_for(lambda: httpx.get(url, timeout=5).status_code == 200, 30, "the result via CLI")

        # uvicorn shuts down gracefully, then re-raises the signal (exit status -SIGTERM).
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in (tmp_path / "gw.log").read_text()
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(30) == 0, (tmp_path / "sink.log").read_text()[-2000:]
        assert "stopped after" in (tmp_path / "sink.log").read_text()


def test_gateway_process_with_redis_stopped_and_a_wrong_token(tmp_path: Path) -> None:
    """``streamsense gateway`` as a user runs it: Redis stopped gives JSON 503s and one log
    line per change, never a traceback; a wrong token gives 401 with what to send."""
    from tests.sink.test_outage import OwnRedis

    node = OwnRedis(tmp_path)
    node.start()
    port = procs.free_port()
    token = "cli-test-token-0123456789"
    env = {"STREAMSENSE_REDIS_URL": node.url, "STREAMSENSE_GATEWAY_TOKEN": token}
    log = tmp_path / "gw.log"
    base = f"http://127.0.0.1:{port}"
    bearer = {"Authorization": f"Bearer {token}"}
    try:
        with _service(["gateway", "--port", str(port)], env, log) as gateway:
            wait_for(lambda: _healthy_at(f"{base}/healthz"), 30, "the gateway")
            wrong = httpx.get(f"{base}/api/sources", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert wrong.json() == {
                "detail": "missing or wrong token (send it as Authorization: Bearer <token>)"
            }
            node.kill()
            for _ in range(5):  # a dashboard polling
                down = httpx.get(f"{base}/api/sources", headers=bearer, timeout=10)
                assert down.status_code == 503 and down.json() == {"error": "redis unavailable"}
            node.start()
            wait_for(
                lambda: httpx.get(f"{base}/api/sources", headers=bearer).status_code == 200,
                30,
                "the API back",
            )
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(30)
    finally:
        if node.proc is not None:
            node.kill()
    text = log.read_text()
    assert text.count("redis unavailable (") == 1, text[-3000:]
    assert text.count("redis is back") == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert token not in text


def _healthy_at(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
