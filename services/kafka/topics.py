"""Every topic of the catalogue with its settings, provisioned idempotently with the AdminClient."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from streamsense.schemas.catalog import FRAME_MAX_BYTES, Topic, dlq_topic
from streamsense.services.kafka.exceptions import KafkaIOError
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    retention_ms: int = 7 * DAY_MS
    cleanup_policy: str = "delete"
    max_message_bytes: int = 1024 * 1024
    with_dlq: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def configs(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": self.cleanup_policy,
            "max.message.bytes": str(self.max_message_bytes),
            **self.extra,
        }


#: The settings of every catalogue topic (logical names; the prefix is added when provisioning).
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        Topic.FRAMES,
        partitions=6,
        retention_ms=HOUR_MS,
        max_message_bytes=FRAME_MAX_BYTES,
        with_dlq=True,
        extra={"segment.ms": str(HOUR_MS)},
    ),
    TopicSpec(Topic.TEXT, partitions=3, with_dlq=True),
    TopicSpec(Topic.LABELS_TEXT, partitions=1, retention_ms=30 * DAY_MS, with_dlq=True),
    TopicSpec(Topic.DETECTIONS, partitions=6, retention_ms=DAY_MS, with_dlq=True),
    TopicSpec(Topic.SEGMENTS, partitions=6, retention_ms=DAY_MS, with_dlq=True),
    TopicSpec(Topic.SENTIMENT, partitions=3, retention_ms=DAY_MS, with_dlq=True),
    TopicSpec(
        Topic.MODEL_UPDATES, partitions=1, retention_ms=-1, cleanup_policy="compact", with_dlq=True
    ),
    TopicSpec(Topic.ANALYTICS_CAMERA, partitions=3, retention_ms=DAY_MS),
    TopicSpec(Topic.ANALYTICS_TEXT, partitions=3, retention_ms=DAY_MS),
    TopicSpec(Topic.ALERTS, partitions=1, retention_ms=30 * DAY_MS),
)


def spec_of(name: str) -> TopicSpec:
    """The spec of a catalogue topic (logical name)."""
    return next(s for s in TOPICS if s.name == name)


def expand(specs: Iterable[TopicSpec], prefix: str = "") -> list[TopicSpec]:
    """Prefix names and add a ``<topic>.dlq`` (same size limit, longer retention) where wanted."""
    out: list[TopicSpec] = []
    for s in specs:
        named = TopicSpec(**{**s.__dict__, "name": f"{prefix}{s.name}"})
        out.append(named)
        if s.with_dlq:
            out.append(
                TopicSpec(
                    dlq_topic(named.name),
                    partitions=1,
                    retention_ms=30 * DAY_MS,
                    max_message_bytes=s.max_message_bytes,
                )
            )
    return out


def ensure_topics(
    settings: StreamsenseSettings,
    specs: Iterable[TopicSpec] = TOPICS,
    timeout: float = 30.0,
) -> dict[str, str]:
    """Create missing topics, align configs and grow partitions of existing ones.

    Returns ``{topic: "created" | "updated" | "unchanged"}``. Running it twice is harmless.
    """
    wanted = expand(specs, settings.topic_prefix)
    admin = AdminClient(settings.librdkafka_config())
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        msg = f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}"
        raise KafkaIOError(msg) from exc
    result: dict[str, str] = {}
    new = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=-1, config=s.configs())
        for s in wanted
        if s.name not in existing
    ]
    if new:
        for name, fut in admin.create_topics(new, request_timeout=timeout).items():
            try:
                fut.result()
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    msg = f"creating topic {name}: {exc}"
                    raise KafkaIOError(msg) from exc
                result[name] = "unchanged"
    for s in wanted:
        if s.name in result:
            continue
        result[s.name] = _align(admin, s, len(existing[s.name].partitions), timeout)
    for name, state in sorted(result.items()):
        log.debug("topic %s: %s", name, state)
    return result


def _align(admin: AdminClient, spec: TopicSpec, partitions: int, timeout: float) -> str:
    resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
    current = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    changes = [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
        for k, v in spec.configs().items()
        if current.get(k) is None or current[k].value != v
    ]
    changed = False
    if changes:
        resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name, incremental_configs=changes)
        admin.incremental_alter_configs([resource], request_timeout=timeout)[resource].result()
        changed = True
    if partitions < spec.partitions:
        fut = admin.create_partitions([NewPartitions(spec.name, spec.partitions)])[spec.name]
        fut.result()
        changed = True
    return "updated" if changed else "unchanged"
