"""A fleet whose Kafka acknowledges nothing: it stops within its Kafka timeout with one error that
counts the frames never acknowledged and says what to do, and the log holds a few of the
failed deliveries, not one line per frame in flight. A fleet whose frames Kafka refuses says so
in its health."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.services.local import procs
from streamsense.services.producers.exceptions import KafkaUnavailableError
from streamsense.services.producers.fleet import CameraFleet
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.producers.spec import CameraSpec
from tests.conftest import wait_for


def test_a_fleet_without_acknowledgements_stops_counting_what_was_lost(
    image_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = f"127.0.0.1:{procs.free_port()}"  # nothing listens: nothing is acknowledged
    settings = CameraProducerSettings(
        kafka_bootstrap=bootstrap,
        camera_status_topic=None,
        service_name="test-fleet-no-acks",
        camera_kafka_timeout_s=2,
        camera_flush_timeout_s=0.2,
        camera_max_in_flight=40,  # 80 frames in flight when Kafka is given up
        camera_width=64,
        camera_loop=True,
    )
    specs = [
        CameraSpec.from_settings(settings, cam, str(image_folder)) for cam in ("left", "right")
    ]
    fleet = CameraFleet(settings, specs, pace=False, kafka_config={"log_level": 0})
    caplog.set_level(logging.INFO, logger="streamsense")
    start = time.monotonic()
    with pytest.raises(KafkaUnavailableError) as err:
        fleet.run()
    took = time.monotonic() - start
    failed = sum(c.stats.failed for c in fleet.cameras)
    assert failed == 80
    message = str(err.value)
    assert message.startswith(f"Kafka at {bootstrap} acknowledged nothing for 2 s")
    assert f": {failed} frame(s) handed to Kafka were not acknowledged" in message
    assert "check the broker and STREAMSENSE_KAFKA_BOOTSTRAP, then start again" in message
    assert took < 10, f"{took:.1f} s"
    ok, detail = fleet.health()
    assert not ok and detail["kafka_error"].startswith(f"Kafka at {bootstrap}")
    undelivered = [r for r in caplog.records if "frame not delivered" in r.getMessage()]
    assert len(undelivered) == 2 * 3, "the first three per camera, then only counted"


@pytest.mark.integration
def test_a_camera_whose_frames_kafka_refuses_turns_health_red_with_the_reason(
    stack: dict[str, str], image_folder: Path
) -> None:
    """Before: ``/healthz`` said ok, the camera ``online``, while every frame was refused."""
    topic = f"frames-small.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack["bootstrap"]})
    new = NewTopic(topic, 1, 1, config={"max.message.bytes": "1000"})  # no frame fits
    admin.create_topics([new])[topic].result()
    settings = CameraProducerSettings(
        kafka_bootstrap=stack["bootstrap"], camera_topic=topic, camera_status_topic=None,
        service_name="test-fleet-refused", camera_fps=20, camera_loop=True,
    )  # fmt: skip
    fleet = CameraFleet(settings, [CameraSpec.from_settings(settings, "shelf", str(image_folder))])
    t = threading.Thread(target=fleet.run)
    t.start()
    try:
        wait_for(lambda: fleet.cameras[0].stats.failed >= 3, 30, "3 refused frames")
        ok, detail = fleet.health()
        assert fleet.cameras[0].state == "online", "the source reads on"
        assert not ok
        why = detail["failing"]["shelf"]
        assert why.startswith(f"frame not delivered to {topic}: Broker: Message size too large")
        assert "raise it, as `streamsense topics create` does" in why
        assert detail["cameras"]["shelf"]["failing"] == why
    finally:
        fleet.stop_event.set()
        t.join(30)
    assert fleet.cameras[0].stats.acked == 0
