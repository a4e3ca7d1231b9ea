"""Idle sources leave Redis: their results expire and the listings drop them, and so do the
statuses of cameras gone silent (real broker, real Redis, the real sink), so a producer
inventing ids cannot grow Redis for ever."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from streamsense.schemas.catalog import Topic
from streamsense.schemas.registry import encode
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.serving.writes import LayoutWriter
from streamsense.services.sink.service import RedisSink
from tests.conftest import wait_for
from tests.gateway.conftest import camera_status
from tests.sink import factory

pytestmark = pytest.mark.integration

TTL_S = 2


@pytest.fixture
def r(stack: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack["redis_url"])
    yield client
    client.close()


def test_a_source_idle_past_the_ttl_leaves_the_results_and_the_listing(
    stack: dict[str, str], r: redis.Redis, request: pytest.FixtureRequest
) -> None:
    settings = factory.sink_settings(
        stack["bootstrap"], stack["redis_url"], request.node.name, sink_source_ttl_s=TTL_S
    )
    keys = RedisKeys(settings.redis_prefix)
    sink = RedisSink(settings)
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    try:
        old = [factory.sentiment("gone-quiet", i) for i in range(3)]
        old += [factory.detection("cam-gone", i, [(0.1, 0.1, 0.3, 0.3)]) for i in range(2)]
        records = [factory.result_record(m) for m in old]
        status = encode(camera_status("cam-gone"))
        records.append((Topic.CAMERAS_STATUS, status, "cam-gone", None))
        factory.produce(settings, records)
        wait_for(lambda: r.sismember(keys.sources("detect"), "cam-gone"), 30, "first results")
        wait_for(lambda: r.hexists(keys.camera_status, "cam-gone"), 30, "the camera's status")
        assert 0 < r.ttl(keys.stream("sentiment", "gone-quiet")) <= TTL_S
        assert 0 < r.ttl(keys.latest("detect", "cam-gone")) <= TTL_S
        time.sleep(TTL_S + 1.5)  # both keys expire; the listings still name the sources
        assert not r.exists(
            keys.stream("sentiment", "gone-quiet"), keys.latest("detect", "cam-gone")
        )
        assert r.sismember(keys.sources("sentiment"), "gone-quiet")

        # the next batch (another source) takes the idle ones out of the listings
        factory.produce(settings, [factory.result_record(factory.sentiment("still-here", 1))])
        wait_for(
            lambda: (
                not r.sismember(keys.sources("sentiment"), "gone-quiet")
                and not r.sismember(keys.sources("detect"), "cam-gone")
            ),
            30,
            "idle sources dropped from the listings",
        )
        assert r.smembers(keys.sources("sentiment")) == {b"still-here"}
        assert r.zrange(keys.sources_seen("sentiment"), 0, -1) == [b"still-here"]
        assert r.exists(keys.latest("sentiment", "still-here"))
    finally:
        sink.stop()
        thread.join(60)


def test_a_ttl_of_zero_keeps_everything(r: redis.Redis) -> None:
    writer = LayoutWriter(RedisKeys("ssforever"), source_ttl_s=0)
    pipe = r.pipeline(transaction=False)
    writer.result(pipe, "detect", "cam-1", b"{}", publish=False)
    writer.latest(pipe, "detect", "cam-1", b"{}", 1)
    writer.source(pipe, "detect", "cam-1")
    writer.seen(pipe, "detect", "cam-1", 1)  # written at the epoch's first millisecond
    assert writer.forget_idle(pipe, ["detect"], int(time.time() * 1000)) == 0
    pipe.execute()
    keys = writer.keys
    assert (
        r.ttl(keys.stream("detect", "cam-1")) == -1 and r.ttl(keys.latest("detect", "cam-1")) == -1
    )
    assert r.sismember(keys.sources("detect"), "cam-1")
    r.delete(keys.stream("detect", "cam-1"), keys.latest("detect", "cam-1"), keys.sources("detect"),
             keys.sources_seen("detect"))  # fmt: skip


def test_cameras_whose_thumbnails_stopped_leave_the_camera_listing(r: redis.Redis) -> None:
    writer = LayoutWriter(RedisKeys("ssthumbs"), thumb_ttl_s=1, source_ttl_s=60)
    now_ms = int(time.time() * 1000)
    pipe = r.pipeline(transaction=False)
    meta = {"width": 4, "height": 3, "seq": 1, "capture_ns": 1}
    writer.thumbnail(pipe, "cam-idle", b"jpeg", meta, now_ms - 61_000)
    writer.thumbnail(pipe, "cam-live", b"jpeg", meta, now_ms)
    writer.forget_idle(pipe, ["detect"], now_ms)
    pipe.execute()
    keys = writer.keys
    assert r.smembers(keys.cameras) == {b"cam-live"}
    assert r.zrange(keys.cameras_seen, 0, -1) == [b"cam-live"]
    r.delete(keys.cameras, keys.cameras_seen, keys.thumb("cam-idle"), keys.thumb("cam-live"),
             keys.thumb_meta("cam-idle"), keys.thumb_meta("cam-live"))  # fmt: skip
