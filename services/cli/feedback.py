"""``streamsense feedback --text T --label L``: one labeled example onto ``labels.text``."""

from __future__ import annotations

import typer

from streamsense.services.cli.entry import console, fail, settings_from


def feedback(
    text: str = typer.Option(..., "--text", help="the text that was labeled"),
    label: str = typer.Option(..., "--label", help="its label, e.g. negative|neutral|positive"),
    source_id: str = typer.Option("cli", "--source-id", help="where the text came from"),
    model: str = typer.Option("sentiment", "--model", help="the model (or task) it is for"),
) -> None:
    """Send labeled feedback for the online learner (waits for Kafka's acknowledgement)."""
    from pydantic import ValidationError

    from streamsense.services.kafka.exceptions import KafkaIOError
    from streamsense.services.kafka.feedback import make_feedback, send_feedback
    from streamsense.services.kafka.producer import Producer
    from streamsense.services.settings import StreamsenseSettings

    settings = settings_from(StreamsenseSettings, service_name="feedback-cli")
    try:
        example = make_feedback(text, label, source_id, model)
        producer = Producer(settings)
        topic = send_feedback(producer, settings, example)
    except (KafkaIOError, ValidationError) as exc:
        msg = f"feedback not delivered: {exc}"
        raise fail(msg) from exc
    console().print(f"sent {label!r} for {model} to {topic}")
