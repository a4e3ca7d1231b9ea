"""Redis down for 30 s while results keep arriving (tests/sink/test_outage.py restarts it at
once): the sink holds its offsets, reports unhealthy for the whole outage, and catches up
with every result after Redis is back, with the default retry settings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from streamsense.services.serving.keys import RedisKeys
from tests.conftest import wait_for
from tests.kafka_helpers import committed_total
from tests.sink import factory
from tests.sink.test_outage import SOURCES, OwnRedis, _produce, _seqs
from tests.sink.test_sink import Running

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 30.0


def test_redis_down_30_s_then_the_sink_catches_up(stack: dict[str, str], tmp_path: Path) -> None:
    own = OwnRedis(tmp_path)
    own.start()
    settings = factory.sink_settings(stack["bootstrap"], own.url, "outage30", sink_thumbnails=False)
    assert settings.sink_retry_cap_s == 5.0, "the default retry policy is what is measured"
    keys = RedisKeys(settings.redis_prefix)
    topic = settings.topic("results.sentiment")
    client = redis.Redis.from_url(own.url, socket_timeout=1)
    running = Running(settings)
    try:
        _produce(settings, range(100))
        wait_for(lambda: len(_seqs(client, keys)) == 100, 30, "the first 100 results")
        wait_for(
            lambda: committed_total(settings.kafka_bootstrap, settings.sink_group, topic, 2) == 100,
            20,
            "the first 100 offsets committed",
        )

        own.kill()
        down_at = time.monotonic()
        sent, unhealthy_polls, polls = 100, 0, 0
        while time.monotonic() - down_at < OUTAGE_S:  # 20 results/s into the outage
            _produce(settings, range(sent, sent + 10))
            sent += 10
            polls += 1
            unhealthy_polls += not running.sink.health()[0]
            tick = down_at + polls * 0.5
            wait_for(lambda t=tick: time.monotonic() > t, 5, "the next tick")
        held = committed_total(settings.kafka_bootstrap, settings.sink_group, topic, 2)

        own.start()
        back_at = time.monotonic()
        expected = {(SOURCES[i % 3], i) for i in range(sent)}
        wait_for(lambda: _seqs(client, keys) == expected, 60, f"all {sent} results")
        caught_up_s = time.monotonic() - back_at
        wait_for(lambda: running.sink.health()[0], 20, "healthy again")
    finally:
        running.stop()
        client.close()
        if own.proc is not None:
            own.kill()
    print(
        f"\nredis outage {back_at - down_at:.0f} s: {sent - 100} results arrived meanwhile, "
        f"{running.sink.handler.retries} retries; every result in Redis {caught_up_s:.1f} s "
        "after it came back"
    )
    assert not running.errors
    assert held == 100, "offsets never advance past what Redis acknowledged"
    assert unhealthy_polls >= polls - 2, "unhealthy for the whole outage"
    assert running.sink.loop.dead_lettered == 0
    assert caught_up_s < 10, "retries are capped at 5 s, the backlog is written in seconds"
    assert committed_total(settings.kafka_bootstrap, settings.sink_group, topic, 2) == sent
