"""A Redis lost entirely is restored from Kafka: results served by the real gateway, Redis (with
persistence off, so nothing survives) killed with SIGKILL and started empty, then
``streamsense sink rebuild`` (the real CLI) replays the results topics, and the gateway's REST
API answers exactly as before the kill."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.rebuild import Rebuild, parse_duration
from streamsense.services.sink.settings import SinkSettings
from tests.conftest import wait_for
from tests.sink import factory
from tests.sink.test_outage import OwnRedis
from tests.sink.test_sink import Running

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAMERAS = ("cam-a", "cam-b")
TEXTS = ("app.log", "chat", "reviews")
BOXES = [(0.1, 0.2, 0.5, 0.9)]


def _records() -> list[tuple[Any, ...]]:
    out = [factory.result_record(factory.detection(c, i, BOXES)) for c in CAMERAS for i in range(5)]
    out += [factory.result_record(factory.segment(c, 2, factory.person_mask())) for c in CAMERAS]
    out += [factory.result_record(factory.sentiment(TEXTS[i % 3], i)) for i in range(30)]
    return out


def _serving(http: httpx.Client) -> dict[str, Any]:
    """What a client of the gateway sees: sources, every latest result, every history."""
    seen: dict[str, Any] = {"sources": http.get("/api/sources").json()}
    for task, sources in seen["sources"]["tasks"].items():
        for source in sources:
            latest = http.get(f"/api/latest/{task}/{source}")
            assert latest.status_code == 200, latest.text
            body = latest.json()
            assert body["written_ms"] > 0
            seen[f"latest {task} {source}"] = body["result"]
            page = http.get(f"/api/results/{task}/{source}", params={"limit": 1000}).json()
            seen[f"history {task} {source}"] = [item["result"] for item in page["items"]]
    return seen


def _rebuild(settings: SinkSettings, repo_root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "STREAMSENSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "STREAMSENSE_REDIS_URL": settings.redis_url.get_secret_value(),
        "STREAMSENSE_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMSENSE_REDIS_PREFIX": settings.redis_prefix,
    }
    res = subprocess.run(
        [sys.executable, "-m", "streamsense.services.cli", "sink", "rebuild", *args],
        cwd=repo_root, env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode()


def test_a_redis_lost_entirely_is_rebuilt_from_kafka(
    stack: dict[str, str], tmp_path: Path, repo_root: Path
) -> None:
    own = OwnRedis(tmp_path, persistence=False)
    own.start()
    settings = factory.sink_settings(stack["bootstrap"], own.url, "rebuild", sink_thumbnails=False)
    keys = RedisKeys(settings.redis_prefix)
    client = redis.Redis.from_url(own.url, socket_timeout=2)
    gateway = ServerThread(
        GatewaySettings(redis_url=own.url, redis_prefix=settings.redis_prefix, gateway_port=0)
    ).start()
    http = httpx.Client(base_url=gateway.url, timeout=10)
    running = Running(settings)
    try:
        factory.produce(settings, _records())
        wait_for(lambda: client.xlen(keys.stream("sentiment", "reviews")) == 10, 30, "the sink")
        wait_for(lambda: client.xlen(keys.stream("detect", "cam-b")) == 5, 30, "the sink")
        running.stop()  # the documented procedure: the sink is stopped for a rebuild
        before = _serving(http)
        assert len(before) == 1 + 2 * (2 + 2 + 3)  # sources, latest + history of 7 sources
        assert len(before["history sentiment chat"]) == 10

        own.kill()
        own.start()  # persistence off: it comes back empty
        assert http.get("/api/latest/sentiment/chat").status_code == 404
        assert http.get("/api/sources").json()["tasks"]["sentiment"] == []

        live = client.pubsub()
        live.psubscribe(keys.channel_pattern)
        assert live.get_message(timeout=5)["type"] == "psubscribe"
        table = _rebuild(settings, repo_root)
        assert "sentiment" in table and "30" in table
        assert _serving(http) == before
        assert live.get_message(timeout=1) is None, "history is replayed, not published live"
        live.close()
        _rebuild(settings, repo_root)  # a second rebuild replaces, it does not duplicate
        assert _serving(http) == before
    finally:
        if running.thread.is_alive():
            running.stop()
        http.close()
        gateway.stop()
        client.close()
        if own.proc is not None:
            own.kill()
    assert not running.errors


def test_since_replays_only_recent_results(stack: dict[str, str], tmp_path: Path) -> None:
    own = OwnRedis(tmp_path, persistence=False)
    own.start()
    settings = factory.sink_settings(stack["bootstrap"], own.url, "since", sink_thumbnails=False)
    keys = RedisKeys(settings.redis_prefix)
    client = redis.Redis.from_url(own.url, socket_timeout=2)
    try:
        factory.produce(
            settings, [factory.result_record(factory.sentiment("old", i)) for i in range(5)]
        )
        t0 = time.time()
        wait_for(lambda: time.time() > t0 + 1.5, 5, "a gap between the two batches")
        middle = time.time()
        wait_for(lambda: time.time() > middle + 1.5, 5, "a gap between the two batches")
        factory.produce(
            settings, [factory.result_record(factory.sentiment("new", i)) for i in range(3)]
        )
        result = Rebuild(settings, since_s=time.time() - middle, client=client).run()
        assert result["tasks"]["sentiment"] == {"results": 3, "sources": 1, "invalid": 0}
        assert client.xlen(keys.stream("sentiment", "new")) == 3
        assert not client.exists(keys.stream("sentiment", "old"))
        assert client.smembers(keys.sources("sentiment")) == {b"new"}
    finally:
        client.close()
        own.kill()


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("30", 30)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
