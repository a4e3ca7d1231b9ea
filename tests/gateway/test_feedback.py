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


def _labels(pipeline: Pipeline, key: bytes, at_least: int) -> list[LabeledText]:
    """The labels keyed ``key``, read until the topic holds ``at_least`` records (or 10 s)."""
    topic = pipeline.sink_settings.topic(Topic.LABELS_TEXT)
    records = read_all(pipeline.sink_settings.kafka_bootstrap, topic, at_least, 10)
    return [decode(m.value(), LabeledText) for m in records if m.key() == key]


def test_feedback_lands_on_labels_text_as_the_gateways_source(pipeline: Pipeline) -> None:
    topic = pipeline.sink_settings.topic(Topic.LABELS_TEXT)
    body = {"text": "the <b>flight</b> was great", "label": "positive"}
    reply = httpx.post(f"{pipeline.url}/api/feedback", json=body, timeout=30)
    assert reply.status_code == 202, reply.text
    assert reply.json() == {"topic": topic}
    same = httpx.post(
        f"{pipeline.url}/api/feedback",
        json={"text": "so so", "label": "negative", "source_id": "gateway"},
        timeout=30,
    )
    assert same.status_code == 202, "naming the gateway's own source is allowed"
    examples = _labels(pipeline, b"gateway", 2)
    assert [(e.text, e.label, e.source_id, e.model) for e in examples] == [
        (body["text"], "positive", "gateway", "sentiment"),
        ("so so", "negative", "gateway", "sentiment"),
    ]


def test_a_caller_cannot_speak_as_another_source(pipeline: Pipeline) -> None:
    """One token (or none on loopback) cannot tell callers apart: a caller naming a source
    the learner may trust (STREAMSENSE_LEARNER_SOURCES), or a new one per label to get past
    the per-source share, is refused and nothing is sent."""
    url = f"{pipeline.url}/api/feedback"
    with httpx.Client(timeout=30) as http:
        for source in ("labelling-team", "gateway2", "Gateway"):
            reply = http.post(url, json={"text": "x", "label": "positive", "source_id": source})
            assert reply.status_code == 403, reply.text
            assert "STREAMSENSE_GATEWAY_FEEDBACK_SOURCE" in reply.json()["detail"]
        sent = http.post(url, json={"text": "marker", "label": "positive"})
        assert sent.status_code == 202
    texts = [(e.source_id, e.text) for e in _labels(pipeline, b"gateway", 3)]
    assert ("gateway", "marker") in texts
    assert [e.text for e in _labels(pipeline, b"labelling-team", 3)] == []


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
