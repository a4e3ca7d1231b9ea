"""The sink applies every result exactly once: results and positions in one Redis transaction,
a restarted sink starts where Redis says, a Redis that lost its data is refilled from Kafka."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from streamsense.services.local import procs
from streamsense.services.runner import running
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.service import RedisSink
from streamsense.services.sink.settings import SinkSettings
from tests.conftest import wait_for
from tests.sink import factory

pytestmark = pytest.mark.integration

SOURCES = ("log-a", "log-b", "log-c")


@pytest.fixture
def sink_settings(stack: dict[str, str], request: pytest.FixtureRequest) -> SinkSettings:
    return factory.sink_settings(
        stack["bootstrap"], stack["redis_url"], request.node.name, sink_max_batch=20
    )


@pytest.fixture
def r(stack: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack["redis_url"])
    yield client
    client.close()


def _send(settings: SinkSettings, n: int, start: int = 0) -> None:
    records = [factory.result_record(factory.sentiment(SOURCES[i % 3], i)) for i in range(start, n)]
    factory.produce(settings, records)


def _entries(r: redis.Redis, settings: SinkSettings) -> Counter[int]:
    """How many stream entries each result (by its seq) has, over every source."""
    keys = RedisKeys(settings.redis_prefix)
    seen: Counter[int] = Counter()
    for source in SOURCES:
        for _id, fields in r.xrange(keys.stream("sentiment", source)):
            seen[orjson.loads(fields[b"json"])["source"]["seq"]] += 1
    return seen


@pytest.fixture
def child_sink(sink_settings: SinkSettings, tmp_path: Path) -> Iterator[object]:
    procs_started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        env = {
            "STREAMSENSE_KAFKA_BOOTSTRAP": sink_settings.kafka_bootstrap,
            "STREAMSENSE_REDIS_URL": sink_settings.redis_url.get_secret_value(),
            "STREAMSENSE_TOPIC_PREFIX": sink_settings.topic_prefix,
            "STREAMSENSE_REDIS_PREFIX": sink_settings.redis_prefix,
            "STREAMSENSE_SINK_GROUP": str(sink_settings.sink_group),
            "STREAMSENSE_SINK_MAX_BATCH": "20",
            "STREAMSENSE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        }
        log = tmp_path / f"sink{len(procs_started)}.log"
        proc = procs.start_cli(["sink", "redis", "--no-thumbnails"], log, env)
        procs_started.append(proc)
        return proc

    yield start
    for proc in procs_started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kill_9_and_restart_leave_exactly_one_entry_per_result(
    sink_settings: SinkSettings, r: redis.Redis, child_sink: object
) -> None:
    n = 3000
    _send(sink_settings, n)
    first = child_sink()  # type: ignore[operator]
    wait_for(lambda: sum(_entries(r, sink_settings).values()) >= 600, 60, "a good part written")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    before = _entries(r, sink_settings)
    assert 0 < sum(before.values()) < n, "killed mid-stream"
    second = child_sink()  # type: ignore[operator]
    wait_for(lambda: len(_entries(r, sink_settings)) == n, 90, "every result in Redis")
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0
    seen = _entries(r, sink_settings)
    assert set(seen) == set(range(n))
    assert max(seen.values()) == 1, [s for s, c in seen.items() if c > 1][:10]


def test_a_redis_that_lost_everything_is_refilled_from_kafka(
    sink_settings: SinkSettings, r: redis.Redis
) -> None:
    """FLUSHALL under a running sink (Redis restarted without persistence): the sink sees its
    positions gone, reads the results topics again from the beginning, and Redis ends up with
    every result exactly once."""
    n = 600
    _send(sink_settings, n)
    sink = RedisSink(sink_settings)
    with running(sink):
        wait_for(lambda: len(_entries(r, sink_settings)) == n, 60, "everything written")
        keys = RedisKeys(sink_settings.redis_prefix)
        for key in r.scan_iter(f"{keys.prefix}:*"):
            r.delete(key)
        _send(sink_settings, n + 30, start=n)  # the next batch finds the positions gone
        wait_for(lambda: len(_entries(r, sink_settings)) == n + 30, 60, "refilled from Kafka")
        seen = _entries(r, sink_settings)
        assert max(seen.values()) == 1
        assert sink.health()[0]
