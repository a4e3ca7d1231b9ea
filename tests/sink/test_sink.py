"""The Redis sink against the real broker and a real Redis: layout, fan-out, DLQ, thumbnails."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import orjson
import pytest
import redis
from confluent_kafka import Consumer, KafkaException, TopicPartition

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.service import RedisSink
from streamsense.services.sink.settings import SinkSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.sink import factory

pytestmark = pytest.mark.integration


class Running:
    """A sink running in a thread; ``stop()`` drains it and re-raises what it raised."""

    def __init__(self, settings: SinkSettings) -> None:
        self.sink = RedisSink(settings)
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.sink.run()
        except BaseException as exc:  # surfaced to the test
            self.errors.append(exc)

    def stop(self) -> None:
        self.sink.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()


@pytest.fixture
def sink_settings(stack: dict[str, str], request: pytest.FixtureRequest) -> SinkSettings:
    return factory.sink_settings(stack["bootstrap"], stack["redis_url"], request.node.name)


@pytest.fixture
def r(stack: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack["redis_url"])
    yield client
    client.close()


def _committed(settings: SinkSettings, topic: str) -> int:
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.sink_group})
    try:
        parts = [TopicPartition(settings.topic(topic), p) for p in range(2)]
        return sum(max(tp.offset, 0) for tp in c.committed(parts, timeout=10))
    except KafkaException:  # e.g. the group coordinator is still loading
        return -1
    finally:
        c.close()


def test_results_land_in_the_redis_layout_and_are_published(
    sink_settings: SinkSettings, r: redis.Redis
) -> None:
    keys = RedisKeys(sink_settings.redis_prefix)
    pubsub = r.pubsub()
    pubsub.psubscribe(keys.channel_pattern)
    mask = factory.person_mask()
    results = [factory.detection("cam-a", i, [(0.1, 0.2, 0.5, 0.9)]) for i in range(5)]
    results += [factory.segment("cam-a", i, mask) for i in range(3)]
    results += [factory.sentiment(f"log-{i % 2}", i) for i in range(10)]
    records = [factory.result_record(m) for m in results]
    records.append(("results.sentiment", b'{"schema": "nope"}', "log-0", None))
    jpeg, headers = factory.jpeg_frame("cam-a", 7)
    records.append(("frames", jpeg, "cam-a", headers))
    factory.produce(sink_settings, records)

    running = Running(sink_settings)
    try:
        wait_for(
            lambda: _committed(sink_settings, "results.sentiment") == 11,
            30,
            "sentiment offsets committed",
        )
        wait_for(lambda: _committed(sink_settings, "frames") == 1, 30, "frame offset committed")
    finally:
        running.stop()
    assert not running.errors

    assert r.xlen(keys.stream("detect", "cam-a")) == 5
    assert r.xlen(keys.stream("segment", "cam-a")) == 3
    assert r.xlen(keys.stream("sentiment", "log-0")) == 5
    assert r.smembers(keys.sources("sentiment")) == {b"log-0", b"log-1"}
    latest = orjson.loads(r.hget(keys.latest("detect", "cam-a"), "json") or b"")
    assert latest["source"]["seq"] == 4
    assert latest["detections"][0]["box"] == {"x1": 0.1, "y1": 0.2, "x2": 0.5, "y2": 0.9}
    seg = orjson.loads(r.hget(keys.latest("segment", "cam-a"), "json") or b"")
    assert seg["mask"]["size"] == [512, 512]

    thumb = r.get(keys.thumb("cam-a"))
    assert thumb is not None
    img = cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (320, 320, 3)
    assert 0 < r.ttl(keys.thumb("cam-a")) <= sink_settings.sink_thumb_ttl_s
    assert r.hget(keys.thumb_meta("cam-a"), "seq") == b"7"
    assert r.smembers(keys.cameras) == {b"cam-a"}

    published = []
    deadline = time.monotonic() + 10
    while len(published) < 18 and time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.5)
        if msg is not None and msg["type"] == "pmessage":
            published.append(msg["channel"])
    pubsub.close()
    assert len(published) == 18
    assert published.count(keys.channel("sentiment", "log-1").encode()) == 5

    dead = read_all(sink_settings.kafka_bootstrap, sink_settings.topic("results.sentiment.dlq"), 1)
    assert len(dead) == 1
    info = DeadLetterInfo.from_kafka_headers(dead[0].headers())
    assert info.error_class == "UnknownSchemaError"
    assert info.service == sink_settings.service_name


def test_a_result_on_the_wrong_topic_is_dead_lettered_and_a_bad_frame_skipped(
    sink_settings: SinkSettings, r: redis.Redis
) -> None:
    keys = RedisKeys(sink_settings.redis_prefix)
    wrong = factory.result_record(factory.sentiment("log-x", 1))
    jpeg, headers = factory.jpeg_frame("cam-b", 1)
    records = [
        ("results.detections", wrong[1], "log-x", None),
        ("frames", b"not a jpeg", "cam-b", headers),
        ("frames", jpeg, "cam-b", [("ss-schema", b"something-else")]),
        factory.result_record(factory.detection("cam-b", 2, [(0.0, 0.0, 1.0, 1.0)])),
    ]
    factory.produce(sink_settings, records)
    running = Running(sink_settings)
    try:
        wait_for(lambda: r.xlen(keys.stream("detect", "cam-b")) == 1, 30, "the good detection")
        wait_for(lambda: _committed(sink_settings, "frames") == 2, 30, "frames committed")
    finally:
        running.stop()
    dead = read_all(sink_settings.kafka_bootstrap, sink_settings.topic("results.detections.dlq"), 1)
    assert (
        "expected 'streamsense.result.detection'"
        in DeadLetterInfo.from_kafka_headers(dead[0].headers()).error_message
    )
    assert r.get(keys.thumb("cam-b")) is None
    frames_dlq = read_all(sink_settings.kafka_bootstrap, sink_settings.topic("frames.dlq"), 1, 2)
    assert frames_dlq == []
