"""A real pipeline per test module: results produced to Kafka, the real sink writing Redis,
the real gateway (uvicorn in a thread) serving it."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.models.card import InputSpec, ModelCard, Source
from streamsense.models.store import ModelStore
from streamsense.schemas.cameras import CameraStatus
from streamsense.schemas.catalog import Topic
from streamsense.schemas.registry import encode
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.service import RedisSink
from streamsense.services.sink.settings import SinkSettings
from tests.conftest import wait_for
from tests.sink import factory

CAMERA = "cam-1"
TEXTS = ("reviews", "chat")
#: What a camera status says it reads: a stream URL without its password, as producers send it.
SOURCE = "rtsp://viewer:***@10.0.0.5/stream1"


@dataclass
class Pipeline:
    sink_settings: SinkSettings
    gateway_settings: GatewaySettings
    sink: RedisSink
    gateway: ServerThread
    redis: redis.Redis

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def keys(self) -> RedisKeys:
        return RedisKeys(self.sink_settings.redis_prefix)

    def produce(self, records: list[tuple]) -> None:
        factory.produce(self.sink_settings, records)

    def wait_stream(self, task: str, source: str, n: int, timeout: float = 30) -> None:
        key = self.keys.stream(task, source)
        wait_for(lambda: self.redis.xlen(key) >= n, timeout, f"{n} entries in {key}")


def _store(root: Path) -> Path:
    """A model store with one real entry, written through the model store's own API."""
    artifact = root.parent / "artifact.bin"
    artifact.write_bytes(b"weights")
    store = ModelStore(root)
    for version in ("1", "2"):
        card = ModelCard(
            name="sentiment",
            version=version,
            task="sentiment",
            adapter="keras-text",
            format="keras",
            artifact="model.keras",
            sha256=hashlib.sha256(b"weights").hexdigest(),
            licence="Apache-2.0",
            source=Source(kind="trained"),
            input=InputSpec(kind="text", shape=[None], dtype="string"),
            labels=list(factory.LABELS),
            metrics={"accuracy": 0.74},
        )
        store.put("sentiment", version, artifact, card)
    store.set_champion("sentiment", "2")
    return root


BOXES = [(0.3, 0.05, 0.7, 0.95), (0.05, 0.6, 0.25, 0.95)]


def camera_frame(p: Pipeline, seq: int) -> None:
    """A new frame of the camera and its two detections, as a live camera sends them: the
    thumbnail in Redis is fresh again (it expires ``sink_thumb_ttl_s`` after the last frame)."""
    jpeg, headers = factory.jpeg_frame(CAMERA, seq)
    p.produce([("frames", jpeg, CAMERA, headers)])
    key = p.keys.thumb_meta(CAMERA)
    wait_for(lambda: int(p.redis.hget(key, "seq") or -1) >= seq, 30, f"thumbnail of frame {seq}")
    p.produce([factory.result_record(factory.detection(CAMERA, seq, BOXES))])


def seed(p: Pipeline) -> None:
    """Detections, a segment and a frame for the camera; sentiment for two text sources."""
    jpeg, headers = factory.jpeg_frame(CAMERA, 3)
    records = [
        ("frames", jpeg, CAMERA, headers),
        factory.result_record(factory.segment(CAMERA, 3, factory.person_mask())),
    ]
    records += [factory.result_record(factory.detection(CAMERA, i, BOXES)) for i in range(4)]
    records += [factory.result_record(factory.sentiment(TEXTS[i % 2], i)) for i in range(20)]
    p.produce(records)
    p.wait_stream("detect", CAMERA, 4)
    p.wait_stream("segment", CAMERA, 1)
    p.wait_stream("sentiment", TEXTS[0], 10)
    p.wait_stream("sentiment", TEXTS[1], 10)
    wait_for(lambda: p.redis.exists(p.keys.thumb(CAMERA)), 30, "the thumbnail")


def camera_status(
    camera: str, state: str = "online", age_s: float = 0.0, **kw: Any
) -> CameraStatus:
    """A status made ``age_s`` ago by a producer that publishes every 2 s (``interval_s``)."""
    updated = time.time_ns() - int(age_s * 1e9)
    fields: dict[str, Any] = {
        "camera_id": camera, "state": state, "since_ns": updated - 5_000_000_000,
        "source": SOURCE, "last_frame_ns": updated - 300_000_000, "last_seq": 99, "fps": 4.8,
        "target_fps": 5.0, "frames_sent": 100, "frames_dropped": 1, "reconnects": 2,
        "updated_ns": updated, "interval_s": 2.0, "producer": "produce-cameras@host:41",
    }  # fmt: skip
    fields.update(kw)
    return CameraStatus(**fields)


def publish(p: Pipeline, *statuses: CameraStatus) -> None:
    """Through Kafka and the real sink, as a camera producer publishes them."""
    p.produce([(Topic.CAMERAS_STATUS, encode(s), s.camera_id, None) for s in statuses])
    for s in statuses:
        want = encode(s)
        wait_for(lambda s=s, want=want: p.redis.hget(p.keys.camera_status, s.camera_id) == want,
                 30, f"{s.camera_id}'s status in Redis")  # fmt: skip


def labels_topic(settings: SinkSettings) -> str:
    """The ``labels.text`` topic under the module's prefix (the feedback route's target)."""
    name = settings.topic(Topic.LABELS_TEXT)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(name, 1, 1)]).values():
        fut.result()
    return name


@pytest.fixture(scope="module")
def pipeline(
    stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Pipeline]:
    name = request.module.__name__.rsplit(".", 1)[-1]
    sink_settings = factory.sink_settings(stack["bootstrap"], stack["redis_url"], name)
    store = _store(tmp_path_factory.mktemp("gw") / "models")
    labels_topic(sink_settings)
    gw_settings = GatewaySettings(
        kafka_bootstrap=stack["bootstrap"],
        topic_prefix=sink_settings.topic_prefix,  # POST /api/feedback writes labels.text here
        redis_url=stack["redis_url"],
        redis_prefix=sink_settings.redis_prefix,
        gateway_port=0,
        model_store=store,
        gateway_client_queue=getattr(request.module, "CLIENT_QUEUE", 256),
        gateway_ws_ping_s=getattr(request.module, "WS_PING_S", 20.0),
        **getattr(request.module, "GATEWAY_SETTINGS", {}),
    )
    sink = RedisSink(sink_settings)
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    gateway = ServerThread(gw_settings).start()
    client = redis.Redis.from_url(stack["redis_url"])
    p = Pipeline(sink_settings, gw_settings, sink, gateway, client)
    try:
        seed(p)
        yield p
    finally:
        gateway.stop()
        sink.stop()
        thread.join(60)
        client.close()
