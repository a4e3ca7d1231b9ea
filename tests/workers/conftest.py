"""Fixtures of the worker tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic


@pytest.fixture
def sentiment_env(stack: dict[str, str], zoo_store: Path) -> Iterator[dict[str, object]]:
    """Settings of a sentiment worker on topics of its own (text with 2 partitions)."""
    prefix = f"f{uuid.uuid4().hex[:8]}."
    names = {"text": 2, "text.dlq": 1, "results.sentiment": 1, "models.updates": 1}
    admin = AdminClient({"bootstrap.servers": stack["bootstrap"]})
    new = [NewTopic(prefix + n, num_partitions=k, replication_factor=1) for n, k in names.items()]
    for fut in admin.create_topics(new).values():
        fut.result()
    yield {"kafka_bootstrap": stack["bootstrap"], "topic_prefix": prefix, "model_store": zoo_store}
