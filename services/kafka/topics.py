"""Every topic of the catalogue with its settings, provisioned idempotently with the AdminClient."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

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
from streamsense.services.kafka.exceptions import (
    KafkaIOError,
    KafkaUnreachableError,
    TopicMismatchError,
)
from streamsense.services.settings import StreamsenseSettings

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

#: How much larger a ``<topic>.dlq`` may hold than the dead-letter budget of its source
#: (:func:`dead_letter_budget`). The broker checks a topic's ``max.message.bytes`` against the
#: record batch as sent, i.e. after compression, while librdkafka checks its own
#: ``message.max.bytes`` against the uncompressed record (key + value + serialized headers).
#: A dead letter is budgeted uncompressed, so what the broker receives is at most the budget
#: plus (a) the batch framing, 61 B of header and at most 41 B of varints per record, and (b)
#: compression growth. (b) is zero: librdkafka sends a batch uncompressed whenever the codec
#: made it larger (``rdkafka_msgset_writer.c``: "If the compressed data is larger than the
#: uncompressed size then throw it away and send as uncompressed"), whatever the codec. Were
#: that ever not so, LZ4F's worst case (incompressible 64 KiB blocks are stored raw with a
#: 4-byte header, plus at most 27 B of frame header, end mark and checksum) is 1,055 B for a
#: 16 MiB record. Records batched together stay under librdkafka's ``batch.size`` (1,000,000 B
#: by default), below every budget. 64 KiB covers all of it many times over.
DLQ_HEADROOM = 64 * 1024
#: Kept free below a source topic's limit in the dead-letter budget: the record's own framing
#: must still fit librdkafka's ``message.max.bytes`` when a dead letter is as large as allowed.
RECORD_MARGIN = 1024
#: The dead-letter budget for a topic outside the catalogue (tests' own topics, a user's): the
#: librdkafka default ``message.max.bytes``, which also fits a broker's default topic limit
#: (1,048,588 B) with its framing.
DEFAULT_DEAD_LETTER_BYTES = 1_000_000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    retention_ms: int = 7 * DAY_MS
    cleanup_policy: str = "delete"
    max_message_bytes: int = 1024 * 1024
    with_dlq: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def with_extra(self, configs: dict[str, str]) -> TopicSpec:
        return self if not configs else replace(self, extra={**self.extra, **configs})

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
    # the newest status per camera (key) is all a reader needs: compacted, small records, hourly
    # segments so the log cleaner can compact a busy fleet's heartbeats
    TopicSpec(
        Topic.CAMERAS_STATUS,
        partitions=3,
        retention_ms=-1,
        cleanup_policy="compact",
        max_message_bytes=64 * 1024,
        with_dlq=True,
        extra={"segment.ms": str(HOUR_MS)},
    ),
    TopicSpec(Topic.ANALYTICS_CAMERA, partitions=3, retention_ms=DAY_MS),
    TopicSpec(Topic.ANALYTICS_TEXT, partitions=3, retention_ms=DAY_MS),
    TopicSpec(Topic.ALERTS, partitions=1, retention_ms=30 * DAY_MS),
)


def spec_of(name: str) -> TopicSpec:
    """The spec of a catalogue topic (logical name)."""
    return next(s for s in TOPICS if s.name == name)


def catalogue_spec(topic: str, prefix: str | None = None) -> TopicSpec | None:
    """The spec of a full topic name: ``prefix + name`` when the prefix is known, else the
    longest catalogue name the topic ends with (``dev-labels.text`` -> ``labels.text``)."""
    if prefix is not None:
        logical = topic[len(prefix) :] if topic.startswith(prefix) else None
        return next((s for s in TOPICS if s.name == logical), None)
    found = [s for s in TOPICS if topic.endswith(s.name)]
    return max(found, key=lambda s: len(s.name), default=None)


def dead_letter_budget(topic: str, prefix: str | None = None) -> int:
    """The largest dead letter of ``topic`` (key + value + serialized headers, uncompressed):
    its limit minus :data:`RECORD_MARGIN`. Its ``.dlq`` holds :data:`DLQ_HEADROOM` more, so a
    dead letter within this budget is always accepted, whatever codec sent the original."""
    spec = catalogue_spec(topic, prefix)
    if spec is None:
        return DEFAULT_DEAD_LETTER_BYTES
    return spec.max_message_bytes - RECORD_MARGIN


def expand(specs: Iterable[TopicSpec], prefix: str = "") -> list[TopicSpec]:
    """Prefix names and add a ``<topic>.dlq`` where wanted: one partition, longer retention and
    :data:`DLQ_HEADROOM` above its source's size limit, so every dead letter fits."""
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
                    max_message_bytes=s.max_message_bytes + DLQ_HEADROOM,
                )
            )
    return out


def replication(brokers: int) -> tuple[int, dict[str, str]]:
    """Replication factor min(3, brokers); with three replicas, a write is acknowledged once
    two have it (``min.insync.replicas=2``), so one broker can die without losing it."""
    rf = max(1, min(3, brokers))
    return rf, ({"min.insync.replicas": "2"} if rf >= 3 else {})


def ensure_topics(
    settings: StreamsenseSettings,
    specs: Iterable[TopicSpec] = TOPICS,
    timeout: float = 30.0,
) -> dict[str, str]:
    """Create missing topics, align configs and grow partitions of existing ones.

    Returns ``{topic: "created" | "updated" | "unchanged"}``. Running it twice is harmless.
    """
    admin = AdminClient(settings.librdkafka_config())
    try:
        md = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        msg = f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}"
        raise KafkaUnreachableError(msg) from exc
    existing = md.topics
    rf, durability = replication(len(md.brokers))
    wanted = [s.with_extra(durability) for s in expand(specs, settings.topic_prefix)]
    result: dict[str, str] = {}
    new = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=rf, config=s.configs())
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


def verify_topics(
    settings: StreamsenseSettings, names: Iterable[str], timeout: float = 10.0
) -> None:
    """Refuse topics (full names, catalogue topics and their ``.dlq``) that are missing or
    differ from the spec: fewer partitions, or another retention, cleanup policy or size
    limit. :class:`TopicMismatchError` says what differs and that ``streamsense topics
    create`` fixes it. A broker that does not answer within ``timeout`` only logs a warning
    (the service's health reports an unreachable broker)."""
    specs = {s.name: s for s in expand(TOPICS, settings.topic_prefix)}
    wanted = [specs[n] for n in names if n in specs]
    admin = AdminClient(settings.librdkafka_config())
    try:
        existing = admin.list_topics(timeout=timeout).topics
        problems: list[str] = []
        found = [s for s in wanted if s.name in existing]
        problems += [f"{s.name} does not exist" for s in wanted if s.name not in existing]
        resources = {s.name: ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in found}
        configs = (
            admin.describe_configs(list(resources.values()), request_timeout=timeout)
            if resources
            else {}
        )
        for s in found:
            current = configs[resources[s.name]].result()
            diffs = [
                f"{k}={current[k].value if k in current else None} (spec {v})"
                for k, v in s.configs().items()
                if k not in current or current[k].value != v
            ]
            if len(existing[s.name].partitions) < s.partitions:
                diffs.append(f"{len(existing[s.name].partitions)} partitions (spec {s.partitions})")
            if diffs:
                problems.append(f"{s.name} has {', '.join(diffs)}")
    except KafkaException as exc:
        log.warning("could not check the topics' configuration (%s); going on", exc)
        return
    if problems:
        msg = (
            f"topics differ from the spec: {'; '.join(problems)}. "
            "Run `streamsense topics create` to create or align them"
        )
        raise TopicMismatchError(msg)
