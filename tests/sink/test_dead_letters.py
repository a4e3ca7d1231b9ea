"""The sink's dead letters, once each, whatever dies. Real broker, real sink, real Redis.

Redis holds the sink's position per results partition (the next offset to apply). It used to
pass only results, so:

- a record dead-lettered last before a restart was read and dead-lettered again (the position
  was still before it): a duplicate;
- a crash after Redis took a batch with a dead letter and a result after it, before the dead
  letter was sent, lost the dead letter: the restarted sink started after the result.

Now the position passes dead letters too (invalid results, and records the consumer cannot
read, which the sink now sees itself), and their offsets are kept in Redis with it until
the group's offsets are committed past them: a restart reads again from one not committed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import Producer as RawProducer

from streamsense.schemas.registry import encode
from streamsense.services.runner import running
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.service import RedisSink
from streamsense.services.sink.settings import SinkSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.sink import crash_child, factory

pytestmark = pytest.mark.integration

SOURCE = "app.log"
POISON = b'{"source_id": "app.log", "this is": "not a result"}'
#: A record the sink cannot read at all: 20 MB of zeros, about 1 KB with zstd, past the
#: consumer's receive limit set below (librdkafka reports it as a consumer error).
BOMB = b"\0" * 20_000_000
LIMITS = {"fetch.max.bytes": 1_000_000, "receive.message.max.bytes": 2_000_000}


@pytest.fixture
def settings(stack: dict[str, str], request: pytest.FixtureRequest) -> SinkSettings:
    return factory.sink_settings(
        stack["bootstrap"],
        stack["redis_url"],
        request.node.name,
        sink_thumbnails=False,
        kafka_extra=LIMITS,
    )


@pytest.fixture
def r(stack: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack["redis_url"])
    yield client
    client.close()


def _send(settings: SinkSettings, *values: bytes | int) -> None:
    """Results (an int: the seq of a good one) or raw values, in order, one partition: by a
    client of its own with zstd and a large message limit (a bomb's sender)."""
    p = RawProducer({"bootstrap.servers": settings.kafka_bootstrap, "compression.type": "zstd",
                     "message.max.bytes": 50_000_000, "partitioner": "murmur2_random"})  # fmt: skip
    for v in values:
        value = encode(factory.sentiment(SOURCE, v)) if isinstance(v, int) else v
        p.produce(settings.topic("results.sentiment"), value, key=SOURCE.encode())
        assert p.flush(30) == 0


def _seqs(r: redis.Redis, settings: SinkSettings) -> list[int]:
    keys = RedisKeys(settings.redis_prefix)
    entries = r.xrange(keys.stream("sentiment", SOURCE))
    return [orjson.loads(fields[b"json"])["source"]["seq"] for _id, fields in entries]


def _dead_letters(settings: SinkSettings, at_least: int) -> list[int]:
    """The original offsets of the dead letters, reading until one more than expected could
    have arrived."""
    got = read_all(settings.kafka_bootstrap, settings.topic("results.sentiment") + ".dlq",
                   at_least + 1, timeout=8)  # fmt: skip
    return [int(dict(m.headers() or [])["dlq-original-offset"]) for m in got]


def test_a_dead_letter_last_before_a_restart_is_not_sent_again(
    settings: SinkSettings, r: redis.Redis
) -> None:
    _send(settings, 0, POISON)
    with running(RedisSink(settings)):
        wait_for(lambda: _seqs(r, settings) == [0], 30, "the first result")
        wait_for(lambda: read_all(settings.kafka_bootstrap,
                                  settings.topic("results.sentiment") + ".dlq", 1, 1),
                 30, "the dead letter")  # fmt: skip
    _send(settings, 2)
    with running(RedisSink(settings)):
        wait_for(lambda: _seqs(r, settings) == [0, 2], 30, "the result after the restart")
    assert _dead_letters(settings, 1) == [1], "one dead letter, for offset 1"


@pytest.mark.parametrize("poison", [POISON, BOMB], ids=["invalid", "unreadable"])
def test_a_crash_after_redis_took_a_dead_letters_batch_loses_no_dead_letter(
    settings: SinkSettings, r: redis.Redis, tmp_path: Path, poison: bytes
) -> None:
    _send(settings, 0, poison, 2)
    env = {
        "STREAMSENSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "STREAMSENSE_REDIS_URL": settings.redis_url.get_secret_value(),
        "STREAMSENSE_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMSENSE_REDIS_PREFIX": settings.redis_prefix,
        "STREAMSENSE_SINK_GROUP": str(settings.sink_group),
        "STREAMSENSE_SINK_THUMBNAILS": "false",
        "STREAMSENSE_KAFKA_EXTRA": orjson.dumps(LIMITS).decode(),
    }
    log = tmp_path / "child.log"
    with log.open("wb") as out:
        child = subprocess.run([sys.executable, crash_child.__file__], env=env, stdout=out,
                               stderr=subprocess.STDOUT, timeout=120, check=False)  # fmt: skip
    assert child.returncode == crash_child.EXIT_CODE, log.read_text()[-3000:]
    # an unreadable record ends its batch (the rest of its partition is read after a seek)
    taken = [0, 2] if poison is POISON else [0]
    assert _seqs(r, settings) == taken, "Redis took the batch, results and position"
    assert read_all(settings.kafka_bootstrap, settings.topic("results.sentiment") + ".dlq", 1,
                    timeout=2) == [], "the crash came before the dead letter"  # fmt: skip
    with running(RedisSink(settings)):
        wait_for(lambda: read_all(settings.kafka_bootstrap,
                                  settings.topic("results.sentiment") + ".dlq", 1, 1),
                 30, "the dead letter after the restart")  # fmt: skip
        _send(settings, 3)
        wait_for(lambda: _seqs(r, settings) == [0, 2, 3], 30, "the next result")
    assert _dead_letters(settings, 1) == [1], "the dead letter, once"
    assert _seqs(r, settings) == [0, 2, 3], "no result twice"
