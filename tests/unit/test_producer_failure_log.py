"""A lost broker fails every queued record: the log says why a few times, then counts, instead
of one ERROR line per record ahead of the message that matters (a real librdkafka producer
whose broker does not exist; its records time out)."""

from __future__ import annotations

import logging
import socket

import pytest

from streamsense.services.kafka.producer import FAILURES_LOGGED, Producer
from streamsense.services.settings import StreamsenseSettings


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_failed_deliveries_are_logged_a_few_times_then_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = StreamsenseSettings(kafka_bootstrap=f"127.0.0.1:{_dead_port()}")
    producer = Producer(settings, linger_ms=0, config={"message.timeout.ms": 300})
    with caplog.at_level(logging.ERROR, logger="streamsense.services.kafka.producer"):
        for i in range(50):
            producer.produce("nowhere", f"line {i}".encode())
        producer.flush(10)
    lines = [r.getMessage() for r in caplog.records if "delivery to nowhere failed" in r.message]
    assert producer.failed == 50
    assert len(lines) == FAILURES_LOGGED, lines
    assert "further ones logged 1 in 1000" in lines[-1]
    producer.close(1)
