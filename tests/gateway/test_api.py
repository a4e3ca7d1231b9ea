"""REST routes against the real pipeline: values a dashboard or downstream user relies on."""

from __future__ import annotations

import time

import cv2
import httpx
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.conftest import wait_for
from tests.gateway.conftest import CAMERA, TEXTS, Pipeline
from tests.sink import factory

pytestmark = pytest.mark.integration


def test_sources_latest_and_thumbnail(pipeline: Pipeline) -> None:
    with httpx.Client(base_url=pipeline.url, timeout=10) as http:
        src = http.get("/api/sources").json()
        assert src["cameras"] == [CAMERA]
        assert src["tasks"]["sentiment"] == sorted(TEXTS)
        assert src["tasks"]["detect"] == [CAMERA]

        latest = http.get(f"/api/latest/detect/{CAMERA}").json()
        assert latest["task"] == "detect" and latest["source"] == CAMERA
        assert latest["result"]["source"]["seq"] == 3
        assert len(latest["result"]["detections"]) == 2
        assert latest["written_ms"] <= time.time() * 1000

        seg = http.get(f"/api/latest/segment/{CAMERA}").json()["result"]
        rle = {"size": seg["mask"]["size"], "counts": seg["mask"]["counts"].encode()}
        assert np.array_equal(mask_utils.decode(rle), factory.person_mask())

        thumb = http.get(f"/api/thumbnail/{CAMERA}")
        assert thumb.headers["content-type"] == "image/jpeg"
        assert thumb.headers["x-frame-seq"] == "3"
        img = cv2.imdecode(np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (320, 320, 3)

        assert http.get("/api/latest/detect/nobody").status_code == 404
        assert http.get("/api/thumbnail/nobody").status_code == 404
        assert http.get("/api/latest/faces/cam-1").status_code == 422


def test_results_history_pages_by_stream_id_and_by_time(pipeline: Pipeline) -> None:
    source = TEXTS[0]
    with httpx.Client(base_url=pipeline.url, timeout=10) as http:
        newest = http.get(f"/api/results/sentiment/{source}", params={"limit": 3}).json()
        seqs = [it["result"]["source"]["seq"] for it in newest["items"]]
        assert seqs == [14, 16, 18], "the newest 3, oldest first"

        first = http.get(
            f"/api/results/sentiment/{source}", params={"since": "0", "limit": 4}
        ).json()
        assert [it["result"]["source"]["seq"] for it in first["items"]] == [0, 2, 4, 6]
        after = http.get(
            f"/api/results/sentiment/{source}", params={"since": first["last_id"], "limit": 100}
        ).json()
        assert [it["result"]["source"]["seq"] for it in after["items"]] == [8, 10, 12, 14, 16, 18]

        ms = int(first["items"][2]["id"].split("-")[0])
        by_time = http.get(f"/api/results/sentiment/{source}", params={"since": str(ms)}).json()
        assert by_time["items"][0]["id"] <= first["items"][2]["id"]
        assert by_time["last_id"] == after["last_id"]

        assert (
            http.get(f"/api/results/sentiment/{source}", params={"since": "x"}).status_code == 422
        )
        empty = http.get("/api/results/sentiment/nobody").json()
        assert empty["items"] == [] and empty["last_id"] is None


def test_models_stats_health_and_metrics(pipeline: Pipeline) -> None:
    with httpx.Client(base_url=pipeline.url, timeout=10) as http:
        reply = http.get("/api/models")
        models = reply.json()
        # The store is reported as found, never by its path (a path tells an attacker where
        # the files are); no path of the store appears anywhere in the answer.
        assert models["store_found"] is True
        store = pipeline.gateway_settings.model_store
        assert store is not None and str(store) not in reply.text and "/tmp" not in reply.text
        stored = {m["name"]: m for m in models["models"]}
        assert stored["sentiment"]["champion"] == "2"
        assert [v["version"] for v in stored["sentiment"]["versions"]] == ["1", "2"]
        assert stored["sentiment"]["versions"][0]["metrics"] == {"accuracy": 0.74}
        in_service = {
            (s["task"], s["name"], s["version"]): s["sources"] for s in models["in_service"]
        }
        assert in_service == {
            ("detect", "centernet", "1"): 1,
            ("segment", "selfie", "1"): 1,
            ("sentiment", "sentiment", "3"): 2,
        }

        stats = http.get("/api/stats").json()
        assert stats["tasks"]["sentiment"]["results"] == 20
        assert abs(stats["now_ms"] - time.time() * 1000) < 60_000, "the serving layer's clock"
        assert stats["live_evicted"] == 0
        e2e = stats["tasks"]["detect"]["e2e_ms"]
        assert e2e is not None and 0 < e2e["p50"] < 60_000
        assert stats["tasks"]["sentiment"]["sink_ms"]["p50"] >= 0

        health = http.get("/healthz")
        assert health.status_code == 200 and health.json()["live"] is True
        metrics = http.get("/metrics").text
        assert "streamsense_gateway_ws_clients" in metrics

        page = http.get("/")
        assert page.status_code == 200 and "dashboard.js" in page.text
        assert http.get("/static/rle.js").status_code == 200


def test_ids_cannot_reach_each_others_keys(pipeline: Pipeline) -> None:
    """A camera called ``cam-1:meta`` once overwrote camera ``cam-1``'s metadata hash; ids are
    encoded into key-safe names now, so both cameras keep their own keys."""
    other = f"{CAMERA}:meta"
    jpeg, headers = factory.jpeg_frame(other, 41)
    pipeline.produce([("frames", jpeg, other, headers)])
    pipeline.produce([factory.result_record(factory.detection(other, 41, [(0, 0, 1, 1)]))])
    pipeline.wait_stream("detect", other, 1)
    wait_for(lambda: pipeline.redis.exists(pipeline.keys.thumb(other)), 30, "its thumbnail")
    with httpx.Client(base_url=pipeline.url, timeout=10) as http:
        mine = http.get(f"/api/thumbnail/{CAMERA}")
        theirs = http.get(f"/api/thumbnail/{other}")
        assert mine.status_code == 200 and theirs.status_code == 200
        assert theirs.headers["x-frame-seq"] == "41"
        assert mine.headers["x-frame-seq"] != "41", "cam-1's metadata is its own"
        assert http.get(f"/api/latest/detect/{CAMERA}").json()["result"]["source_id"] == CAMERA
        assert http.get(f"/api/latest/detect/{other}").json()["result"]["source_id"] == other


def test_ids_the_contracts_refuse_are_refused_with_a_reason(pipeline: Pipeline) -> None:
    with httpx.Client(base_url=pipeline.url, timeout=10) as http:
        for bad in ("<script>x</script>", "a\u202eb", "x" * 257, "a%0Ab", "a\\b"):
            for path in (f"/api/latest/detect/{bad}", f"/api/thumbnail/{bad}"):
                reply = http.get(path)
                assert reply.status_code == 422, (path, reply.status_code)
                detail = reply.json()["detail"][0]
                assert detail["loc"][-1] in ("source", "camera") and detail["msg"], detail
        # An id with a slash is a valid id and reachable (the routes take the rest of the path).
        pipeline.produce([factory.result_record(factory.sentiment("logs/app", 1))])
        pipeline.wait_stream("sentiment", "logs/app", 1)
        latest = http.get("/api/latest/sentiment/logs%2Fapp")
        assert latest.status_code == 200 and latest.json()["source"] == "logs/app"
