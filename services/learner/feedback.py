"""Labeled feedback onto ``labels.text``: for the CLI and the gateway's ``POST /api/feedback``."""

from __future__ import annotations

import time

from streamsense.schemas.catalog import Topic
from streamsense.schemas.registry import encode
from streamsense.schemas.text import LabeledText
from streamsense.services.kafka.exceptions import KafkaIOError
from streamsense.services.kafka.producer import Producer
from streamsense.services.learner.exceptions import LearnerError
from streamsense.services.settings import StreamsenseSettings


def make_feedback(text: str, label: str, source_id: str, model: str = "sentiment") -> LabeledText:
    """A validated LabeledText (pydantic raises ValidationError for empty or oversized text)."""
    return LabeledText(
        source_id=source_id, text=text, label=label, model=model, ts_ns=time.time_ns()
    )


def send_feedback(
    producer: Producer,
    settings: StreamsenseSettings,
    text: str,
    label: str,
    source_id: str,
    model: str = "sentiment",
    timeout: float = 10.0,
) -> None:
    """Produce one labeled example keyed by ``source_id`` and wait for Kafka's ack.

    Label names are checked by the learner (unknown ones go to ``labels.text.dlq`` with the
    reason), so a model with other classes needs no change here.
    """
    example = make_feedback(text, label, source_id, model)
    topic = settings.topic(Topic.LABELS_TEXT)
    try:
        producer.send_and_wait(topic, encode(example), source_id, timeout)
    except KafkaIOError as exc:
        msg = f"feedback not delivered: {exc}"
        raise LearnerError(msg) from exc
