"""Topics come from the spec: a worker refuses to start against a results topic configured
otherwise (what a broker's auto-creation makes), saying that ``streamsense topics create``
fixes it, and the local stack's broker creates no topic by itself."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.services.kafka.exceptions import TopicMismatchError
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import TOPICS, ensure_topics, expand, verify_topics
from streamsense.services.settings import StreamsenseSettings
from tests.reliability.conftest import REPO

pytestmark = pytest.mark.integration


def _cli(settings: StreamsenseSettings, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "STREAMSENSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "STREAMSENSE_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMSENSE_HOME": str(tmp_path),
    }
    res = subprocess.run(
        [sys.executable, "-m", "streamsense.services.cli", *args],
        cwd=REPO, env=env, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    return res.returncode, res.stderr.decode()


def test_a_worker_refuses_a_results_topic_unlike_the_spec_until_topics_create(
    stack: dict[str, str], tmp_path: Path
) -> None:
    settings = StreamsenseSettings(
        kafka_bootstrap=stack["bootstrap"], topic_prefix=f"cfg{uuid.uuid4().hex[:8]}."
    )
    results = settings.topic("results.sentiment")
    others = [s for s in expand(TOPICS, settings.topic_prefix) if s.name != results]
    admin = AdminClient(settings.librdkafka_config())
    # every other topic as specified; the results topic as a broker's auto-creation makes it
    ensure_topics(settings, [s for s in TOPICS if s.name != "results.sentiment"])
    admin.create_topics([NewTopic(results, 1, 1)])[results].result()
    assert others

    code, stderr = _cli(settings, tmp_path, "worker", "sentiment")
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == 1, stderr
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    assert f"{results} has max.message.bytes=16777216 (spec 1048576)" in errors[0]
    assert "1 partitions (spec 3)" in errors[0]
    assert errors[0].endswith("Run `streamsense topics create` to create or align them")
    assert settings.topic("text.dlq") not in errors[0], "the spec's topics pass"

    code, stderr = _cli(settings, tmp_path, "topics", "create")
    assert code == 0, stderr
    verify_topics(settings, [results, f"{settings.topic('text')}.dlq"])  # no error now


def test_a_missing_topic_is_named(stack: dict[str, str]) -> None:
    settings = StreamsenseSettings(
        kafka_bootstrap=stack["bootstrap"], topic_prefix=f"gone{uuid.uuid4().hex[:8]}."
    )
    with pytest.raises(TopicMismatchError, match=r"results\.detections does not exist"):
        verify_topics(settings, [settings.topic("results.detections")])


def test_the_local_broker_creates_no_topic_by_itself(stack: dict[str, str]) -> None:
    settings = StreamsenseSettings(kafka_bootstrap=stack["bootstrap"], service_name="typo")
    topic = f"typo.{uuid.uuid4().hex[:8]}"
    errors: list[KafkaError] = []
    p = Producer(settings, config={"message.timeout.ms": 3000, "log_level": 0})
    p.produce(topic, b"x", on_delivery=lambda err, _m: errors.append(err) if err else None)
    p.flush(10)
    p.close(1)
    assert [e.code() for e in errors] in (
        [KafkaError.UNKNOWN_TOPIC_OR_PART],
        [KafkaError._MSG_TIMED_OUT],
        [KafkaError._UNKNOWN_TOPIC],
    ), errors
    assert topic not in AdminClient(settings.librdkafka_config()).list_topics(timeout=10).topics
