"""Labeled feedback onto ``labels.text``: the one way the CLI (``streamsense feedback``) and the
gateway (``POST /api/feedback``) hand a labeled example to the online learner."""

from __future__ import annotations

import time

from streamsense.schemas.catalog import Topic
from streamsense.schemas.registry import encode
from streamsense.schemas.text import LabeledText
from streamsense.services.kafka.producer import Producer
from streamsense.services.settings import StreamsenseSettings


def make_feedback(text: str, label: str, source_id: str, model: str = "sentiment") -> LabeledText:
    """A validated LabeledText (pydantic raises ValidationError for a value out of bounds)."""
    return LabeledText(
        source_id=source_id, text=text, label=label, model=model, ts_ns=time.time_ns()
    )


def send_feedback(
    producer: Producer,
    settings: StreamsenseSettings,
    example: LabeledText,
    timeout: float = 10.0,
) -> str:
    """Produce one labeled example keyed by its source and wait for Kafka's ack; returns the
    topic. :class:`~streamsense.services.kafka.exceptions.KafkaIOError` when not acknowledged.

    Label names are checked by the learner (unknown ones go to ``labels.text.dlq`` with the
    reason), so a model with other classes needs no change here.
    """
    topic = settings.topic(Topic.LABELS_TEXT)
    producer.send_and_wait(topic, encode(example), example.source_id, timeout)
    return topic
