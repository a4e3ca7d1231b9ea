"""/healthz fails while an agent's outputs wait for acknowledgements too long, or while its
writes to Redis have failed for too long."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis

from streamsense.services.analytics.app import AnalyticsApp
from streamsense.services.analytics.redis_out import RedisPublisher
from streamsense.services.analytics.rules import RuleSet
from streamsense.services.analytics.settings import AnalyticsSettings
from streamsense.services.analytics.status import STALLED_AFTER_S
from streamsense.services.analytics.topology import Layout
from streamsense.services.local import procs
from streamsense.services.local.redis import RedisNode
from streamsense.services.serving.keys import RedisKeys


def test_outputs_unacknowledged_for_long_make_health_fail(tmp_path: Path) -> None:
    settings = AnalyticsSettings(kafka_bootstrap="127.0.0.1:1", home=tmp_path)
    app = AnalyticsApp(settings, RuleSet(), Layout(6, 3, 1))
    app.status.recovered = True
    assert app.health()[0] is True

    app.status.waiting["camera"] = time.monotonic() - 1.0  # an ordinary wait
    ok, detail = app.health()
    assert ok is True and "stalled" not in detail

    app.status.waiting["text"] = time.monotonic() - STALLED_AFTER_S - 2
    ok, detail = app.health()
    assert ok is False
    assert detail["stalled"].startswith("text outputs unacknowledged for 12 s")

    del app.status.waiting["text"]  # acknowledged at last
    assert app.health()[0] is True


def test_redis_writes_failing_for_long_make_health_fail_and_recover(tmp_path: Path) -> None:
    """A real redis-server killed and started again: the writes fail (health red after
    STALLED_AFTER_S, saying why), are kept, and land when it answers (green again)."""
    node = RedisNode(tmp_path / "redis", procs.free_port(), persistence=False)
    pid = node.start()
    procs.wait_until(lambda: procs.port_open(node.port), 20, "redis-server", node.log_path)
    keys = RedisKeys("h")
    pub = RedisPublisher(node.url, keys=keys)
    settings = AnalyticsSettings(kafka_bootstrap="127.0.0.1:1", home=tmp_path)
    app = AnalyticsApp(settings, RuleSet(), Layout(6, 3, 1), publisher=pub)
    app.status.recovered = True
    loop = asyncio.new_event_loop()  # the publisher's client lives in one loop, as in the app
    try:
        pub.put_totals("text", "app.log", {"messages": 1.0}, 1, 0, None)
        loop.run_until_complete(pub.flush())
        assert app.health() == (True, app.health()[1]) and pub.failing_for() == 0.0

        assert procs.kill(pid, f"{node.host}:{node.port}")
        pub.put_totals("text", "app.log", {"messages": 2.0}, 2, 0, None)
        loop.run_until_complete(pub.flush())
        ok, detail = app.health()
        assert ok is True and "redis_stalled" not in detail, "a short outage is not red"
        assert pub.failing_since is not None
        pub.failing_since -= STALLED_AFTER_S + 1  # as if it had failed since then
        ok, detail = app.health()
        assert ok is False
        assert detail["redis_stalled"].startswith("Redis writes failing for 11 s (")
        assert detail["redis_pending"] == 1

        pid = node.start()
        procs.wait_until(lambda: procs.port_open(node.port), 20, "redis-server", node.log_path)
        loop.run_until_complete(pub.flush())
        assert app.health()[0] is True and pub.failing_for() == 0.0
        client = redis.Redis.from_url(node.url)
        assert client.hget(keys.analytics("text", "app.log"), "total.messages") == b"2"
        client.close()
    finally:
        loop.run_until_complete(pub.close())
        loop.close()
        procs.kill(pid, f"{node.host}:{node.port}")
