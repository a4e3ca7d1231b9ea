"""Camera statuses (``cameras.status``) into the serving layer: the newest status per camera in
one hash, published live; a tombstone forgets a camera; a record that breaks the contract is
dead-lettered with the reason, never written."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from streamsense.schemas.cameras import CameraStatus
from streamsense.schemas.catalog import Topic
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import decode, encode
from streamsense.services.producers.fleet import CameraFleet
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.producers.spec import CameraSpec
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.settings import SinkSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.sink import factory
from tests.sink.test_sink import Running

pytestmark = pytest.mark.integration


@pytest.fixture
def sink_settings(stack: dict[str, str], request: pytest.FixtureRequest) -> SinkSettings:
    return factory.sink_settings(stack["bootstrap"], stack["redis_url"], request.node.name)


@pytest.fixture
def r(stack: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack["redis_url"])
    yield client
    client.close()


def status(camera: str, state: str, reconnects: int = 0, reason: str | None = None) -> bytes:
    now = time.time_ns()
    return encode(
        CameraStatus(
            camera_id=camera, state=state, since_ns=now - 1_000_000, reason=reason,  # type: ignore[arg-type]
            source="stream rtsp://admin:***@10.0.0.5/s", last_frame_ns=now - 2_000_000,
            last_seq=41, fps=4.9, target_fps=5.0, frames_sent=42, frames_dropped=0,
            reconnects=reconnects, updated_ns=now, interval_s=2.0, producer="test@host:1",
        )
    )  # fmt: skip


def test_the_newest_status_per_camera_is_kept_and_published_and_bad_ones_dead_lettered(
    sink_settings: SinkSettings, r: redis.Redis
) -> None:
    keys = RedisKeys(sink_settings.redis_prefix)
    pubsub = r.pubsub()
    pubsub.subscribe(keys.camera_status_channel)
    odd = "gate:1/ü *"  # not key-safe: it is a hash field, never part of a key
    final = status("cam-a", "online", reconnects=1)
    sentiment = encode(factory.sentiment("app.log", 1))
    records = [
        (Topic.CAMERAS_STATUS, status("cam-a", "online"), "cam-a", None),
        (Topic.CAMERAS_STATUS, status("cam-a", "reconnecting", reason="lost"), "cam-a", None),
        (Topic.CAMERAS_STATUS, status("gone", "offline", reason="stopped"), "gone", None),
        (Topic.CAMERAS_STATUS, status(odd, "reconnecting", reason="not reached yet"), odd, None),
        (Topic.CAMERAS_STATUS, None, "gone", None),  # a tombstone: forget the camera
        (Topic.CAMERAS_STATUS, final, "cam-a", None),
        # poison: each is dead-lettered, nothing of it reaches Redis
        (Topic.CAMERAS_STATUS, b"{not json", "cam-x", None),
        (Topic.CAMERAS_STATUS, sentiment, "cam-y", None),
        (Topic.CAMERAS_STATUS, status("cam-a", "offline"), "cam-b", None),
        (Topic.CAMERAS_STATUS, status("cam-z", "offline"), None, None),
    ]
    factory.produce(sink_settings, records)  # type: ignore[arg-type]
    running = Running(sink_settings)
    try:
        wait_for(lambda: r.hget(keys.camera_status, "cam-a") == final, 30, "cam-a's last status")
        wait_for(lambda: set(r.hkeys(keys.camera_status)) == {b"cam-a", odd.encode()}, 10,
                 "the tombstone applied")  # fmt: skip
        dlq = sink_settings.topic(Topic.CAMERAS_STATUS) + ".dlq"
        dead = read_all(sink_settings.kafka_bootstrap, dlq, 4)
        assert running.sink.health()[0], running.sink.health()
    finally:
        running.stop()
    assert decode(r.hget(keys.camera_status, odd), CameraStatus).state == "reconnecting"
    reasons = sorted(DeadLetterInfo.from_kafka_headers(m.headers()).error_message for m in dead)
    assert len(reasons) == 4
    assert any("not valid JSON" in x for x in reasons), reasons
    assert any("expected 'streamsense.camera_status', got 'streamsense.result.sentiment'" in x
               for x in reasons), reasons  # fmt: skip
    assert any("key 'cam-b' but the status is of camera 'cam-a'" in x for x in reasons), reasons
    assert any("needs the camera id as its key, which is missing" in x for x in reasons)
    assert all("cameras.status[" in x and "]@" in x for x in reasons), "names topic[p]@offset"
    live = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and final not in live:
        msg = pubsub.get_message(timeout=0.2)
        if msg is not None and msg["type"] == "message":
            live.append(msg["data"])
    pubsub.close()
    assert live and live[-1] == final, "the newest status is published live"
    assert all(decode(v, CameraStatus).camera_id in ("cam-a", odd) for v in live)


def test_a_running_camera_shows_up_online_in_redis_then_offline_when_stopped(
    sink_settings: SinkSettings, r: redis.Redis, tmp_path: Path
) -> None:
    images = tmp_path / "shots"
    images.mkdir()
    for i in range(3):
        img = np.full((120, 160, 3), 60 * i, np.uint8)
        cv2.imwrite(str(images / f"{i}.jpg"), img)
    cam = CameraProducerSettings(
        kafka_bootstrap=sink_settings.kafka_bootstrap,
        topic_prefix=sink_settings.topic_prefix,
        camera_status_interval_s=0.3,
        service_name="test-status-e2e",
    )
    fleet = CameraFleet(cam, [CameraSpec(camera_id="porch", source=str(images), fps=10, loop=True)])
    keys = RedisKeys(sink_settings.redis_prefix)

    def porch() -> CameraStatus | None:
        raw = r.hget(keys.camera_status, "porch")
        return decode(raw, CameraStatus) if raw else None

    running = Running(sink_settings)
    thread = threading.Thread(target=fleet.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: (s := porch()) is not None and s.state == "online" and s.frames_sent >= 5,
                 30, "porch online in Redis with frames")  # fmt: skip
        fleet.stop_event.set()
        thread.join(20)
        wait_for(lambda: (s := porch()) is not None and s.state == "offline", 20, "porch offline")
    finally:
        fleet.stop_event.set()
        thread.join(20)
        running.stop()
    last = porch()
    assert last is not None and last.reason == "stopped" and last.target_fps == 10
    assert last.frames_sent == fleet.cameras[0].stats.sent and last.frames_dropped == 0
    assert not last.stale(time.time_ns()), "just published"
