"""``POST /api/feedback`` against the real broker: the labeled example lands on labels.text as
the learner reads it; bad input is refused with the reason; Kafka away is a JSON 503."""

from __future__ import annotations

import httpx
import pytest

from streamsense.schemas.catalog import Topic
from streamsense.schemas.registry import decode
from streamsense.schemas.text import LabeledText
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.local import procs
from tests.gateway.conftest import Pipeline
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration


def test_feedback_lands_on_labels_text(pipeline: Pipeline) -> None:
    topic = pipeline.sink_settings.topic(Topic.LABELS_TEXT)
    body = {"text": "the <b>flight</b> was great", "label": "positive", "source_id": "app"}
    reply = httpx.post(f"{pipeline.url}/api/feedback", json=body, timeout=30)
    assert reply.status_code == 202, reply.text
    assert reply.json() == {"topic": topic}
    records = [
        m
        for m in read_all(pipeline.sink_settings.kafka_bootstrap, topic, 50, 10)
        if m.key() == b"app"
    ]
    assert len(records) == 1
    example = decode(records[0].value(), LabeledText)
    assert (example.text, example.label, example.source_id, example.model) == (
        body["text"],
        "positive",
        "app",
        "sentiment",
    )


def test_bad_feedback_is_refused_with_the_reason(pipeline: Pipeline) -> None:
    url = f"{pipeline.url}/api/feedback"
    with httpx.Client(timeout=30) as http:
        bad_label = http.post(url, json={"text": "x", "label": "<script>"})
        assert bad_label.status_code == 422
        assert bad_label.json()["detail"][0]["loc"] == ["label"]
        assert http.post(url, json={"label": "positive"}).status_code == 422
        assert http.post(url, content=b"text=x&label=positive").status_code == 415
        form = http.post(url, data={"text": "x", "label": "positive"})
        assert form.status_code == 415, "a form post (what a cross-site page can send) is refused"
        big = http.post(url, json={"text": "x" * 100_000, "label": "positive"})
        assert big.status_code == 413
        assert (
            http.post(
                url, content=b"{not json", headers={"content-type": "application/json"}
            ).status_code
            == 422
        )


def test_feedback_without_kafka_is_a_json_503(stack: dict[str, str]) -> None:
    settings = GatewaySettings(
        kafka_bootstrap=f"127.0.0.1:{procs.free_port()}",  # nothing listens there
        redis_url=stack["redis_url"],
        redis_prefix="ssfb",
        gateway_port=0,
        gateway_feedback_timeout_s=1.0,
    )
    with ServerThread(settings) as server:
        reply = httpx.post(
            f"{server.url}/api/feedback", json={"text": "x", "label": "positive"}, timeout=30
        )
    assert reply.status_code == 503
    assert reply.json()["error"].startswith("kafka unavailable: record not delivered")
