"""The watch made ahead (:mod:`streamsense.services.sink.writer`): after a write, the next batch's
``WATCH`` and position read are made at once, so a quiet result costs one round trip to Redis.
It must never let a batch be applied twice, and a watch that went stale while the sink was
idle (its connection closed) must not turn health red. Each test runs a redis-server of its own
so that the commands it counts are the sink's alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from streamsense.schemas.registry import encode
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.handler import RedisSinkHandler, ResultItem
from streamsense.services.sink.positions import field_of
from streamsense.services.sink.settings import SinkSettings
from tests.sink import factory
from tests.sink.test_outage import OwnRedis

pytestmark = pytest.mark.integration

TP = ("results.sentiment", 0)
NAME = "sink-under-test"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[OwnRedis]:
    own = OwnRedis(tmp_path, persistence=False)
    own.start()
    yield own
    own.kill()


@pytest.fixture
def client(node: OwnRedis) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(node.url, client_name=NAME)
    yield c
    c.close()


@pytest.fixture
def admin(node: OwnRedis) -> Iterator[redis.Redis]:
    """Another client: to look, and to act as another sink instance or the server's admin."""
    c = redis.Redis.from_url(node.url)
    yield c
    c.close()


def _handler(node: OwnRedis, client: redis.Redis) -> RedisSinkHandler:
    settings = SinkSettings(redis_url=node.url, service_name="sink-watch-ahead")
    return RedisSinkHandler(settings, client, {"results.sentiment": "sentiment"})


def _items(offsets: range) -> list[ResultItem]:
    return [
        ResultItem("sentiment", "log-a", encode(factory.sentiment("log-a", o)), 0, TP, o)
        for o in offsets
    ]


def _seqs(admin: redis.Redis) -> list[int]:
    entries = admin.xrange(RedisKeys("ss").stream("sentiment", "log-a"))
    return [orjson.loads(fields[b"json"])["source"]["seq"] for _id, fields in entries]


def _calls(admin: redis.Redis, command: str) -> int:
    return int(admin.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_quiet_batch_after_a_write_is_one_transaction_and_no_position_read(
    node: OwnRedis, client: redis.Redis, admin: redis.Redis
) -> None:
    h = _handler(node, client)
    assert h.process(_items(range(2))) == [[], []]
    admin.config_resetstat()
    assert h.process(_items(range(2, 3))) == [[]]
    # the batch: MULTI/EXEC only; then the next batch's WATCH and read, made ahead
    assert (_calls(admin, "exec"), _calls(admin, "hmget")) == (1, 0)
    assert (_calls(admin, "watch"), _calls(admin, "hgetall")) == (1, 1)
    assert _seqs(admin) == [0, 1, 2]


def test_a_position_moved_by_another_sink_meanwhile_is_honoured_nothing_applied_twice(
    node: OwnRedis, client: redis.Redis, admin: redis.Redis
) -> None:
    h = _handler(node, client)
    h.process(_items(range(2)))
    # another instance took the partition over and applied offsets 2 and 3 (their results
    # and its position), while this one held its watch made ahead
    other = _handler(node, admin)
    other.process(_items(range(2, 4)))
    assert h.process(_items(range(2, 5))) == [[], [], []]
    assert _seqs(admin) == [0, 1, 2, 3, 4]
    keys = RedisKeys("ss")
    assert admin.hget(keys.sink_positions, field_of(TP)) == b"5"
    assert h.writer.skipped_applied == 2
    assert (h.retries, h.redis_ok) == (0, True)


def test_a_watch_whose_connection_closed_while_idle_costs_no_failure(
    node: OwnRedis, client: redis.Redis, admin: redis.Redis
) -> None:
    h = _handler(node, client)
    h.process(_items(range(2)))
    killed = [c["id"] for c in admin.client_list() if c.get("name") == NAME]
    assert killed
    for cid in killed:  # as a server-side idle timeout or a proxy would
        admin.client_kill_filter(_id=cid)
    assert h.process(_items(range(2, 4))) == [[], []]
    assert _seqs(admin) == [0, 1, 2, 3]
    assert (h.retries, h.redis_ok) == (0, True), h.writer.last_error
