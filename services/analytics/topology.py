"""The topics the analytics app reads and writes, and the partition counts its tables need.

Faust co-partitions by partition count: its assignor groups every topic with the same number
of partitions, and hands out partition *n* of all of them to the same worker. A table's
changelog must therefore have exactly as many partitions as the stream that updates it
(``faust.exceptions.PartitionsMismatch`` otherwise): the camera table gets the partition count
of ``results.detections`` (which ``results.segments`` must share) and the text table that of
``results.sentiment``. The counts are read from the broker at startup instead of being copied
from ``streamsense.services.kafka.topics``, so a cluster whose topics were grown keeps working.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streamsense.schemas.catalog import ANALYTICS_OUTPUTS, Topic, results_topics
from streamsense.services.analytics.exceptions import AnalyticsError
from streamsense.services.analytics.settings import AnalyticsSettings
from streamsense.services.kafka.exceptions import KafkaUnreachableError
from streamsense.services.kafka.topics import TOPICS, ensure_topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    camera_partitions: int
    text_partitions: int
    replication_factor: int


#: How long one attempt to reach Kafka at start-up waits before saying so and trying again.
ATTEMPT_S = 10.0


def wait_for_topics(settings: AnalyticsSettings, attempt_s: float = ATTEMPT_S) -> Layout:
    """:func:`prepare_topics`, again for as long as Kafka does not answer, as the workers and
    the sink wait (health red, "starting"; SIGTERM stops the process). Before, analytics exited
    1 after 30 s, so a broker a minute late to start left it down until someone restarted it.
    Errors that waiting cannot fix (a topic Kafka refuses to create) still end the start."""
    tries = 0
    while True:
        try:
            return prepare_topics(settings, timeout=attempt_s)
        except KafkaUnreachableError as exc:
            tries += 1
            log.warning(
                "%s; waiting for it (attempt %d, every %.0f s; health says \"starting\"): check "
                "STREAMSENSE_KAFKA_BOOTSTRAP and that the broker is up", exc, tries, attempt_s
            )  # fmt: skip


def prepare_topics(settings: AnalyticsSettings, timeout: float = 30.0) -> Layout:
    """Create the app's topics if missing (idempotent) and read the partition counts;
    :class:`KafkaUnreachableError` when Kafka does not answer within ``timeout``."""
    inputs = list(results_topics())
    wanted = [*inputs, *ANALYTICS_OUTPUTS]
    ensure_topics(settings, [s for s in TOPICS if s.name in wanted], timeout=timeout)
    try:
        md = AdminClient(settings.librdkafka_config()).list_topics(timeout=timeout)
    except KafkaException as exc:
        msg = f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}"
        raise KafkaUnreachableError(msg) from exc
    counts = {name: len(md.topics[settings.topic(name)].partitions) for name in inputs}
    det, seg = counts[Topic.DETECTIONS], counts[Topic.SEGMENTS]
    if det != seg:
        msg = (
            f"results.detections has {det} partitions and results.segments {seg}: the camera "
            "table needs them co-partitioned (the same count)"
        )
        raise AnalyticsError(msg)
    rf = settings.analytics_replication_factor or min(3, max(1, len(md.brokers)))
    layout = Layout(det, counts[Topic.SENTIMENT], rf)
    log.info("analytics topics ready: %s", layout)
    return layout
