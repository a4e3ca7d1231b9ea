"""``streamsense feedback --text T --label L``: one labeled example onto ``labels.text``."""

from __future__ import annotations

import typer

from streamsense.services.cli.entry import console, fail


def feedback(
    text: str = typer.Option(..., "--text", help="the text that was labeled"),
    label: str = typer.Option(..., "--label", help="its label, e.g. negative|neutral|positive"),
    source_id: str = typer.Option("cli", "--source-id", help="where the text came from"),
    model: str = typer.Option("sentiment", "--model", help="the model (or task) it is for"),
) -> None:
    """Send labeled feedback for the online learner (waits for Kafka's acknowledgement)."""
    from pydantic import ValidationError

    from streamsense.schemas.catalog import Topic
    from streamsense.services.kafka.producer import Producer
    from streamsense.services.learner.exceptions import LearnerError
    from streamsense.services.learner.feedback import send_feedback
    from streamsense.services.settings import StreamsenseSettings

    settings = StreamsenseSettings(service_name="feedback-cli")
    producer = Producer(settings)
    try:
        send_feedback(producer, settings, text, label, source_id, model)
    except (LearnerError, ValidationError) as exc:
        raise fail(str(exc)) from exc
    console().print(f"sent {label!r} for {model} to {settings.topic(Topic.LABELS_TEXT)}")
