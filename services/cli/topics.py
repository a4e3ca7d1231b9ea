"""``streamsense topics create | spec``."""

from __future__ import annotations

import typer
from rich.table import Table

from streamsense.services.cli.entry import console as entry_console
from streamsense.services.cli.entry import fail, settings_from
from streamsense.services.exceptions import ServiceError
from streamsense.services.kafka.topics import TOPICS, ensure_topics, expand
from streamsense.services.settings import StreamsenseSettings

app = typer.Typer(help="Provision the platform's Kafka topics from one declarative spec.")
console = entry_console()
_TIMEOUT_S = 30.0


@app.command()
def create() -> None:
    """Create missing topics and align the configs of existing ones (safe to run twice)."""
    settings = settings_from(StreamsenseSettings, service_name="topics")
    # Kafka may take its whole timeout to answer (or not): say what is being waited on.
    entry_console(stderr=True).print(
        f"creating/checking topics on Kafka at {settings.kafka_bootstrap} "
        f"(gives up after {_TIMEOUT_S:g} s)..."
    )
    try:
        result = ensure_topics(settings, timeout=_TIMEOUT_S)
    except ServiceError as exc:
        raise fail(str(exc)) from exc
    table = Table("topic", "state")
    for name, state in sorted(result.items()):
        table.add_row(name, state)
    console.print(table)


@app.command("spec")
def spec() -> None:
    """Print the topic spec (partitions, retention, cleanup policy, size limit)."""
    settings = settings_from(StreamsenseSettings, service_name="topics")
    table = Table("topic", "partitions", "retention ms", "cleanup", "max.message.bytes")
    for s in expand(TOPICS, settings.topic_prefix):
        table.add_row(
            s.name,
            str(s.partitions),
            str(s.retention_ms),
            s.cleanup_policy,
            str(s.max_message_bytes),
        )
    console.print(table)
