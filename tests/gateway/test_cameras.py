"""``GET /api/cameras`` over the real pipeline: statuses produced to ``cameras.status``, written
by the real sink, read by the real gateway; a status past three intervals is stale whatever it
says; entries no sink would write are skipped, counted and logged once, never a 500."""

from __future__ import annotations

import logging
import re
import time

import httpx
import orjson
import pytest

from streamsense.schemas.registry import encode
from streamsense.services.gateway.cameras import entry
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.writes import LayoutWriter
from tests.gateway.conftest import SOURCE, Pipeline, camera_status, publish
from tests.sink import factory

TOKEN = "camera-status-token"
SECRET = "hunter2-password"


def stored_as_is(p: Pipeline, entries: dict[str, bytes]) -> None:
    """Entries the sink would refuse, written through the serving layer as an older or
    foreign writer could have left them."""
    writer = LayoutWriter(p.keys)
    pipe = p.redis.pipeline(transaction=False)
    for camera, value in entries.items():
        writer.camera_status(pipe, camera, value, written_ms=int(time.time() * 1000))
    pipe.execute()


def test_the_effective_state_turns_stale_after_three_intervals() -> None:
    s = camera_status("cam", "online", reason=None)
    at = s.updated_ns
    assert entry(s, at + 6_000_000_000).state == "online", "exactly three intervals: not yet"
    late = entry(s, at + 6_000_000_001 + 60_000_000_000)
    assert late.state == "stale" and late.reported.state == "online"
    assert late.reason == "no status for 66 s: its producer is gone (it last said online)"
    early = entry(s, at - 10_000_000_000)  # a producer clock ahead of the serving layer's
    assert early.status_age_s == 0 and early.last_frame_age_s == 0


@pytest.mark.integration
def test_cameras_fresh_stale_and_malformed(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="streamsense.services.gateway.cameras")
    publish(
        pipeline,
        camera_status("porch"),
        camera_status(
            "gate",
            "reconnecting",
            reason="lost: cannot open stream",
            last_frame_ns=None,
            last_seq=None,
            fps=0.0,
        ),  # fmt: skip
        camera_status("shed", "offline", reason="stopped"),
        camera_status("attic", "online", age_s=45),  # its producer was killed 45 s ago
    )
    hostile = "<img src=x onerror=alert(1)>"
    other = orjson.loads(encode(camera_status("porch")))
    stored_as_is(
        pipeline,
        {
            "torn": b'{"schema": "streamsense.camera_status", "vers',
            "binary": b"\xff\xfe\x00garbage",
            "wrong-schema": encode(factory.sentiment("app.log", 1)),
            "mislabelled": orjson.dumps(other),  # porch's status filed under another camera
            hostile: orjson.dumps({**other, "camera_id": hostile}),  # an id the contract refuses
            "extra": orjson.dumps({**other, "camera_id": "extra", "password": SECRET}),
            "negative": orjson.dumps({**other, "camera_id": "negative", "fps": -1}),
        },
    )
    with httpx.Client(base_url=pipeline.url, timeout=10) as http:
        metrics = http.get("/metrics").text
        before = _malformed_total(metrics)
        reply = http.get("/api/cameras")
        assert reply.status_code == 200, reply.text
        body = reply.json()
        again = http.get("/api/cameras").json()
        after = _malformed_total(http.get("/metrics").text)

    assert abs(body["now_ms"] - time.time() * 1000) < 60_000, "the serving layer's clock"
    cams = {c["camera_id"]: c for c in body["cameras"]}
    assert list(cams) == ["attic", "gate", "porch", "shed"], "sorted; nothing malformed listed"
    assert body["malformed"] == 7 and again["malformed"] == 7

    porch = cams["porch"]
    assert porch["state"] == "online" and porch["reason"] is None
    assert 0 <= porch["status_age_s"] < 30 and porch["last_frame_age_s"] >= 0.3
    assert porch["reported"]["fps"] == 4.8 and porch["reported"]["target_fps"] == 5.0
    assert porch["reported"]["reconnects"] == 2 and porch["reported"]["source"] == SOURCE
    assert porch["reported"]["schema"] == "streamsense.camera_status"
    gate = cams["gate"]
    assert gate["state"] == "reconnecting" and gate["reason"] == "lost: cannot open stream"
    assert gate["last_frame_age_s"] is None
    assert (cams["shed"]["state"], cams["shed"]["reason"]) == ("offline", "stopped")
    attic = cams["attic"]
    assert attic["state"] == "stale" and attic["reported"]["state"] == "online"
    assert re.fullmatch(
        r"no status for 4\d s: its producer is gone \(it last said online\)", attic["reason"]
    ), attic["reason"]
    assert attic["status_age_s"] >= 45

    # Nothing of the skipped entries, no secret, no filesystem path in the answer.
    assert SECRET not in reply.text and hostile not in reply.text and "/tmp" not in reply.text
    # Each malformed entry is logged once (the second read logs nothing new) and counted.
    logged = [r.getMessage() for r in caplog.records if "not a valid camera status" in r.message]
    assert len(logged) == 7, logged
    assert any("'torn'" in m and "not valid JSON" in m for m in logged), logged
    assert any("'mislabelled'" in m and "status of camera 'porch'" in m for m in logged), logged
    assert all(pipeline.keys.camera_status in m for m in logged)
    assert after - before == 7


def _malformed_total(metrics: str) -> float:
    found = re.search(r"^streamsense_gateway_camera_status_malformed_total (\S+)$", metrics, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.integration
def test_cameras_need_the_token_when_one_is_set(pipeline: Pipeline) -> None:
    publish(pipeline, camera_status("porch"))
    gw = pipeline.gateway_settings
    settings = GatewaySettings(
        redis_url=gw.redis_url, redis_prefix=gw.redis_prefix, gateway_port=0, gateway_token=TOKEN
    )
    with ServerThread(settings) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token-xyz"}):
            refused = http.get("/api/cameras", headers=headers)
            assert refused.status_code == 401 and "porch" not in refused.text
        allowed = http.get("/api/cameras", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200
        assert "porch" in [c["camera_id"] for c in allowed.json()["cameras"]]
