"""Redis killed and restarted mid-stream: the sink retries, reports unhealthy, and catches up
with nothing lost and nothing dead-lettered. Uses a dedicated redis-server started exactly as
the local stack ships it (AOF, fsync every second), so the session's Redis is not disturbed.
A kill -9 of the process loses nothing Redis acknowledged: the AOF is written before the reply,
fsync (every second) only matters when the machine itself goes down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from streamsense.services.kafka.exceptions import FatalHandlerError
from streamsense.services.local import procs
from streamsense.services.local.redis import RedisNode
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.handler import RedisSinkHandler, ResultItem
from streamsense.services.sink.settings import SinkSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.sink import factory
from tests.sink.test_sink import Running

pytestmark = pytest.mark.integration

SOURCES = ("log-a", "log-b", "log-c")


class OwnRedis:
    """A redis-server of the test's own, as :class:`RedisNode` (the local stack) starts it."""

    def __init__(self, data_dir: Path, *, persistence: bool = True) -> None:
        self.node = RedisNode(data_dir, procs.free_port(), persistence=persistence)
        self.url = self.node.url
        self.proc: int | None = None

    def start(self) -> None:
        self.proc = self.node.start()
        wait_for(lambda: procs.port_open(self.node.port), 20, "redis-server listening")

    def kill(self) -> None:
        """kill -9: no shutdown, no final write."""
        assert self.proc is not None
        # redis-server retitles itself "redis-server HOST:PORT" (what `local down` matches too)
        assert procs.kill(self.proc, f"{self.node.host}:{self.node.port}")
        self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    node = OwnRedis(tmp_path)
    node.start()
    yield node
    if node.proc is not None:
        node.kill()


def _seqs(client: redis.Redis, keys: RedisKeys) -> set[tuple[str, int]]:
    try:
        got = set()
        for source in SOURCES:
            for _id, fields in client.xrange(keys.stream("sentiment", source)):
                got.add((source, orjson.loads(fields[b"json"])["source"]["seq"]))
        return got
    except redis.ConnectionError:
        return set()


def _produce(settings: SinkSettings, seqs: range) -> None:
    msgs = [factory.sentiment(SOURCES[i % 3], i) for i in seqs]
    factory.produce(settings, [factory.result_record(m) for m in msgs])


def _nothing_dead_lettered(running: Running, settings: SinkSettings, dlq: str) -> None:
    """The sink stopped without an error, and nothing of the outage became a dead letter."""
    assert not running.errors
    assert running.sink.loop.dead_lettered == 0
    assert read_all(settings.kafka_bootstrap, dlq, 1, 2) == []


@pytest.mark.slow
def test_redis_outage_mid_stream_loses_nothing(stack: dict[str, str], own_redis: OwnRedis) -> None:
    settings = factory.sink_settings(
        stack["bootstrap"], own_redis.url, "outage", sink_retry_cap_s=0.3, sink_redis_timeout_s=0.5
    )
    keys = RedisKeys(settings.redis_prefix)
    client = redis.Redis.from_url(own_redis.url, socket_timeout=1)
    expected = {(SOURCES[i % 3], i) for i in range(300)}
    _produce(settings, range(100))
    running = Running(settings)
    try:
        wait_for(lambda: len(_seqs(client, keys)) == 100, 30, "the first 100 results")
        assert running.sink.health()[0]

        own_redis.kill()
        _produce(settings, range(100, 200))
        wait_for(lambda: not running.sink.health()[0], 20, "the sink to report unhealthy")
        assert running.sink.handler.retries > 0
        detail = running.sink.health()[1]
        assert detail["redis_ok"] is False and detail["redis_error"]

        own_redis.start()
        _produce(settings, range(200, 300))
        wait_for(lambda: _seqs(client, keys) == expected, 60, "all 300 results after restart")
        wait_for(lambda: running.sink.health()[0], 20, "the sink to report healthy again")
    finally:
        running.stop()
        client.close()
    _nothing_dead_lettered(running, settings, settings.topic("results.sentiment.dlq"))


def test_stop_while_redis_is_down_raises_fatal_instead_of_dead_lettering() -> None:
    port = procs.free_port()
    settings = SinkSettings(
        redis_url=f"redis://127.0.0.1:{port}/0",
        sink_retry_cap_s=0.05,
        sink_redis_timeout_s=0.2,
        service_name="sink-stop-test",
    )
    client = redis.Redis.from_url(settings.redis_url.get_secret_value(), socket_timeout=0.2)
    handler = RedisSinkHandler(settings, client, {"results.sentiment": "sentiment"})
    item = ResultItem("sentiment", "log-a", b"{}", 0, ("results.sentiment", 0), 0)
    handler.stop()
    with pytest.raises(FatalHandlerError, match="stays uncommitted"):
        handler.process([item])
    assert handler.retries == 1 and not handler.redis_ok
    client.close()


def test_an_idle_sink_reports_a_redis_that_does_not_answer(
    stack: dict[str, str], tmp_path: Path
) -> None:
    """Before: with no result to write, "redis_ok": true for as long as Redis was gone (even
    never there at all); health now asks Redis itself while no write shows it answers."""
    node = OwnRedis(tmp_path)  # not started yet: nothing listens on its port
    settings = factory.sink_settings(stack["bootstrap"], node.url, "idle-probe",
                                     sink_redis_timeout_s=0.5)  # fmt: skip
    running = Running(settings)
    try:
        wait_for(lambda: running.sink.handler.health()[1]["redis_error"], 20,
                 "the probe to find Redis away")  # fmt: skip
        # the loop's read of its positions on assignment fails too (and is retried): once it
        # works, nothing else is written while idle, and that must still turn health green
        wait_for(lambda: running.sink.handler.health()[1]["redis_retries"] >= 1, 30,
                 "the read on assignment to fail")  # fmt: skip
        ok, detail = running.sink.handler.health()
        assert not ok and detail["redis_ok"] is False
        assert "Redis refuses or cannot be reached" in detail["problem"]
        node.start()
        wait_for(lambda: running.sink.handler.health()[0], 20, "health green once Redis answers",
                 lambda: running.sink.handler.health()[1])  # fmt: skip
        node.kill()
        wait_for(lambda: not running.sink.handler.health()[0], 20, "red again, still idle")
    finally:
        running.stop()
        if node.proc is not None:
            node.kill()
    # stopping with Redis gone: positions cannot be saved, which the stop reports (and nothing else)
    assert all("stopping while Redis is unreachable" in str(e) for e in running.errors)


def test_camera_statuses_wait_out_an_outage_under_the_same_policy(
    stack: dict[str, str], own_redis: OwnRedis
) -> None:
    """Statuses go through the results writer's outage policy (``until_written``): red while
    Redis is gone, written once it is back, nothing dead-lettered."""
    from streamsense.schemas.catalog import Topic
    from tests.sink.test_camera_status import status

    settings = factory.sink_settings(
        stack["bootstrap"], own_redis.url, "status-outage", sink_retry_cap_s=0.3,
        sink_redis_timeout_s=0.5,
    )  # fmt: skip
    keys = RedisKeys(settings.redis_prefix)
    client = redis.Redis.from_url(own_redis.url, socket_timeout=1)
    first, last = status("cam-a", "online"), status("cam-a", "reconnecting", reason="lost")
    factory.produce(settings, [(Topic.CAMERAS_STATUS, first, "cam-a", None)])  # type: ignore[list-item]
    running = Running(settings)
    try:
        wait_for(lambda: client.hget(keys.camera_status, "cam-a") == first, 30, "the status")
        own_redis.kill()
        factory.produce(settings, [(Topic.CAMERAS_STATUS, last, "cam-a", None)])  # type: ignore[list-item]
        wait_for(lambda: not running.sink.health()[0], 20, "the sink to report unhealthy")
        assert running.sink.handler.retries > 0
        own_redis.start()

        def written() -> bool:
            try:
                return client.hget(keys.camera_status, "cam-a") == last
            except redis.ConnectionError:
                return False

        wait_for(written, 60, "the status written after the restart")
        wait_for(lambda: running.sink.health()[0], 20, "the sink to report healthy again")
    finally:
        running.stop()
        client.close()
    _nothing_dead_lettered(running, settings, settings.topic(Topic.CAMERAS_STATUS) + ".dlq")
