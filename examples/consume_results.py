"""A downstream consumer of a streamsense results topic.

Results are JSON with a schema name and version; ``streamsense.schemas.registry.decode`` turns them
into typed objects (and raises ``SchemaError`` for anything else). Run it against the local stack::

    python examples/consume_results.py --topic results.sentiment --max 10

Use your own group id so your offsets are yours; ``--from-beginning`` reads what is retained.
"""

from __future__ import annotations

import argparse
import uuid

from confluent_kafka import Consumer

from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.registry import decode
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.services.settings import StreamsenseSettings


def describe(result: DetectionResult | SegmentResult | SentimentResult) -> str:
    """One line per result, the way a downstream user would summarise it."""
    model = f"{result.model.name}@{result.model.version}"
    head = f"{result.source_id} seq={result.source.seq} model={model}"
    if isinstance(result, SentimentResult):
        return f"{head} sentiment={result.label} p={result.probs[result.label]:.2f}"
    if isinstance(result, DetectionResult):
        labels = ", ".join(f"{d.label}:{d.score:.2f}" for d in result.detections)
        return f"{head} detections=[{labels}]"
    return f"{head} person_area={result.class_areas.get('person', 0.0):.3f}"


def consume(
    settings: StreamsenseSettings, topic: str, group: str, max_messages: int, timeout: float
) -> list[str]:
    consumer = Consumer(
        {
            **settings.librdkafka_config(),
            "group.id": group,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",  # results are written in transactions
            "enable.auto.commit": True,
        }
    )
    consumer.subscribe([settings.topic(topic)])
    lines: list[str] = []
    idle = 0.0
    try:
        while len(lines) < max_messages and idle < timeout:
            msg = consumer.poll(0.5)
            if msg is None:
                idle += 0.5
                continue
            if msg.error():
                print(f"consumer error: {msg.error()}")
                continue
            idle = 0.0
            try:
                result = decode(msg.value())
            except SchemaError as exc:  # not a result we understand: skip it, say why
                print(f"skipping {msg.topic()}[{msg.partition()}]@{msg.offset()}: {exc}")
                continue
            assert isinstance(result, DetectionResult | SegmentResult | SentimentResult)
            lines.append(describe(result))
            print(lines[-1])
    finally:
        consumer.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default="results.sentiment", help="logical topic name")
    parser.add_argument("--group", default=f"example-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--max", type=int, default=100, help="stop after this many results")
    parser.add_argument("--idle-timeout", type=float, default=10.0, help="stop when idle (s)")
    args = parser.parse_args()
    # Connection (bootstrap, security, topic prefix) from STREAMSENSE_* like every service.
    consume(
        StreamsenseSettings(service_name="example-consumer"),
        args.topic,
        args.group,
        args.max,
        args.idle_timeout,
    )


if __name__ == "__main__":
    main()
