"""``streamsense demo ...``: runs on the local stack with sample data."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import typer
from confluent_kafka import Message
from confluent_kafka.admin import AdminClient
from rich.table import Table

from streamsense.schemas.registry import decode, encode
from streamsense.schemas.text import TextEvent
from streamsense.services.cli.entry import console as entry_console
from streamsense.services.cli.entry import fail, settings_from
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.handler import BatchHandler, Outcome, OutRecord
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import TopicSpec, ensure_topics
from streamsense.services.settings import StreamsenseSettings

app = typer.Typer(help="Demonstrations on the local stack.")
console = entry_console()

LINES = [
    "service started, all checks green",
    "disk usage at 91% on /var",
    "user login succeeded",
    "payment failed: card declined",
    "backup finished in 3 minutes, great",
]


class _Lengths(BatchHandler[list[Message]]):
    def __init__(self, out_topic: str) -> None:
        self.out_topic = out_topic

    def process(self, prepared: list[Message]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for m in prepared:
            try:
                ev = decode(m.value(), TextEvent)
            except Exception as exc:  # the loop dead-letters it with the reason
                outcomes.append(exc)
                continue
            body = orjson.dumps({"source": ev.source_id, "seq": ev.seq, "chars": len(ev.text)})
            outcomes.append([OutRecord(self.out_topic, body, key=ev.source_id)])
        return outcomes


@app.command()
def smoke(messages: int = typer.Option(200, min=1)) -> None:
    """Produce text events, consume them through the batch loop, show the round trip."""
    settings = settings_from(StreamsenseSettings, service_name="demo-smoke")
    run_id = uuid.uuid4().hex[:8]
    topic, out = settings.topic(f"demo.smoke.{run_id}"), settings.topic(f"demo.smoke.{run_id}.out")
    ensure_topics(
        settings, [TopicSpec(topic, partitions=2, with_dlq=True), TopicSpec(out, partitions=1)]
    )
    producer = Producer(settings)
    start = time.perf_counter()
    for i in range(messages):
        ev = TextEvent(
            source_id="demo",
            text=LINES[i % len(LINES)],
            ts_ns=time.time_ns(),
            seq=i,
            trace_id=uuid.uuid4().hex,
        )
        producer.produce(topic, encode(ev), key="demo")
    producer.produce(topic, b"\xff not json", key="demo")  # poison: goes to text.dlq
    if producer.flush(30):
        msg = "Kafka did not acknowledge every message"
        raise fail(msg)
    loop = BatchLoop(settings, LoopConfig([topic], f"demo-smoke-{run_id}"), _Lengths(out))
    loop.run(max_messages=messages + 1)
    elapsed = time.perf_counter() - start
    table = Table("produced", "consumed", "dead-lettered", "seconds")
    table.add_row(
        str(messages + 1),
        str(loop.processed),
        f"{loop.dead_lettered} ({topic}.dlq)",
        f"{elapsed:.2f}",
    )
    console.print(table)
    AdminClient(settings.librdkafka_config()).delete_topics([topic, topic + ".dlq", out])


@app.command()
def run(
    seconds: float = typer.Option(90.0, help="how long to run; 0 runs until Ctrl-C"),
    samples: Path = typer.Option(None, help="sample data dir (default: <home>/samples)"),
) -> None:
    """Every service on the sample data (camera + text producers, three workers, Redis sink,
    gateway) with live results in the terminal."""
    from streamsense.services.demo.run import run_demo

    settings = settings_from(StreamsenseSettings, service_name="demo")
    code = run_demo(settings, samples or settings.home / "samples", seconds, console)
    raise typer.Exit(code)
