"""Records that break the contracts' bounds on names, labels and ids reach the dead-letter topic
with the reason, through the paths that exist: the sink decoding results, the workers decoding
text events and frame headers. Nothing of them reaches Redis."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import encode
from streamsense.schemas.text import TextEvent
from streamsense.services.kafka.producer import Producer
from streamsense.services.runner import running
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.service import RedisSink
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.settings import WorkerSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.sink import factory

pytestmark = pytest.mark.integration

SCRIPT = "<script>window.__pwned=1</script>"
HANDLER = '<img src=x onerror="window.__pwned=1">'
JS_URL = "javascript:alert(1)//\u202e"


def _mutate(result: bytes, path: tuple[str | int, ...], value: object) -> bytes:
    doc = orjson.loads(result)
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return orjson.dumps(doc)


def test_the_sink_dead_letters_results_beyond_the_bounds(stack: dict[str, str]) -> None:
    s = factory.sink_settings(stack["bootstrap"], stack["redis_url"], "bounds")
    det = encode(factory.detection("cam-ok", 1, [(0.1, 0.1, 0.5, 0.5)]))
    sent = encode(factory.sentiment("chat", 1))
    hostile = [
        ("results.detections", _mutate(det, ("model", "name"), SCRIPT), "model.name"),
        ("results.detections", _mutate(det, ("model", "version"), "1 onload=x"), "model.version"),
        ("results.detections", _mutate(det, ("detections", 0, "label"), HANDLER), "label"),
        ("results.detections", _mutate(det, ("source_id",), "cam\n1"), "source_id"),
        ("results.sentiment", _mutate(sent, ("source_id",), JS_URL), "source_id"),
        ("results.sentiment", _mutate(sent, ("label",), SCRIPT), "label"),
        ("results.sentiment", _mutate(sent, ("source_id",), "x" * 257), "source_id"),
    ]
    records = [(topic, value, "k", None) for topic, value, _ in hostile]
    records.append(factory.result_record(factory.sentiment("chat", 2)))
    factory.produce(s, records)
    sink = RedisSink(s)
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    client = redis.Redis.from_url(stack["redis_url"])
    keys = RedisKeys(s.redis_prefix)
    try:
        dead_det = read_all(s.kafka_bootstrap, s.topic("results.detections.dlq"), 4, 60)
        dead_sent = read_all(s.kafka_bootstrap, s.topic("results.sentiment.dlq"), 3, 60)
        wait_for(lambda: client.xlen(keys.stream("sentiment", "chat")) == 1, 30, "the good one")
    finally:
        sink.stop()
        thread.join(60)
    reasons = [DeadLetterInfo.from_kafka_headers(m.headers()) for m in [*dead_det, *dead_sent]]
    assert len(reasons) == len(hostile)
    for info, (_, _, field) in zip(reasons, hostile, strict=True):
        assert info.error_class == "SchemaError"
        assert field in info.error_message, info.error_message
    # Only the valid result reached Redis; no key or set member holds a hostile value.
    assert client.smembers(keys.sources("detect")) == set()
    assert client.smembers(keys.sources("sentiment")) == {b"chat"}
    client.close()


def _worker_topics(bootstrap: str, prefix: str) -> None:
    names = ["frames", "text", "results.segments", "results.sentiment", "models.updates"]
    new = [NewTopic(prefix + n, num_partitions=1, replication_factor=1) for n in names]
    new += [NewTopic(prefix + n + ".dlq", num_partitions=1, replication_factor=1) for n in names]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics(new).values():
        fut.result()


@pytest.mark.models
def test_workers_dead_letter_text_and_frames_beyond_the_bounds(
    stack: dict[str, str], zoo_store: Path
) -> None:
    prefix = f"b{uuid.uuid4().hex[:8]}."
    _worker_topics(stack["bootstrap"], prefix)
    common = {"kafka_bootstrap": stack["bootstrap"], "topic_prefix": prefix}
    text_s = WorkerSettings(
        task="sentiment", service_name="t-bounds-text", model_store=zoo_store, **common
    )  # type: ignore[arg-type]
    frame_s = WorkerSettings(
        task="segment",
        service_name="t-bounds-frames",
        model_store=zoo_store,
        worker_max_frame_age_ms=0,
        **common,  # type: ignore[arg-type]
    )
    p = Producer(text_s)
    good = TextEvent(source_id="app.log", text="fine", ts_ns=time.time_ns(), seq=0, trace_id="t")
    for i, source in enumerate([SCRIPT, "app\x1b[2J.log"]):
        bad = _mutate(encode(good), ("source_id",), source)
        p.produce(text_s.topic("text"), _mutate(bad, ("seq",), i + 1), key="k")
    p.produce(text_s.topic("text"), encode(good), key="app.log")
    jpeg, headers = factory.jpeg_frame("cam-ok", 0)
    header = FrameHeaders.from_kafka_headers(headers)
    for camera in [HANDLER, "cam\u202e1"]:
        bad_headers = [(k, camera.encode() if k == "ss-camera_id" else v) for k, v in headers]
        p.produce(frame_s.topic("frames"), jpeg, key="k", headers=bad_headers)
    p.produce(frame_s.topic("frames"), jpeg, key=header.camera_id, headers=headers)
    assert p.flush(30) == 0

    text_loop, _ = build_worker(text_s)
    frame_loop, _ = build_worker(frame_s)
    with running(text_loop), running(frame_loop):
        ok_text = read_all(stack["bootstrap"], text_s.topic("results.sentiment"), 1, 90)
        ok_frame = read_all(stack["bootstrap"], frame_s.topic("results.segments"), 1, 90)
        dead_text = read_all(stack["bootstrap"], text_s.topic("text.dlq"), 2, 60)
        dead_frames = read_all(stack["bootstrap"], frame_s.topic("frames.dlq"), 2, 60)
    assert len(ok_text) == 1 and len(ok_frame) == 1
    text_reasons = [DeadLetterInfo.from_kafka_headers(m.headers()) for m in dead_text]
    frame_reasons = [DeadLetterInfo.from_kafka_headers(m.headers()) for m in dead_frames]
    assert len(text_reasons) == 2 and len(frame_reasons) == 2
    assert all(
        r.error_class == "SchemaError" and "source_id" in r.error_message for r in text_reasons
    )
    assert all(
        r.error_class == "SchemaError" and "camera_id" in r.error_message for r in frame_reasons
    )
