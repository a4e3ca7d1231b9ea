"""The batch loop's Kafka consumer: how it joins its group and what it reads.

Committed reads only (results topics are written in transactions), cooperative-sticky
assignment (a rebalance moves only the partitions that change owner), static membership when
``STREAMSENSE_KAFKA_GROUP_INSTANCE_ID`` is set, librdkafka statistics for lag and broker
reachability, and offset handling per delivery policy
(:func:`~streamsense.services.kafka.delivery.consumer_config`). ``LoopConfig.consumer_config``
overrides any of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer

from streamsense.services.kafka.clientlog import ClientState
from streamsense.services.kafka.delivery import consumer_config
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.settings import StreamsenseSettings


def loop_consumer(
    settings: StreamsenseSettings,
    config: LoopConfig,
    client: ClientState,
    *,
    exactly_once: bool,
    on_stats: Callable[[str], None],
) -> Consumer:
    conf: dict[str, Any] = {
        **settings.librdkafka_config(),
        **client.librdkafka_config(),
        "group.id": config.group_id,
        **consumer_config(exactly_once, config.commit_interval_ms),
        # results topics are written in transactions: never read an aborted one
        "isolation.level": "read_committed",
        "auto.offset.reset": config.auto_offset_reset,
        "max.poll.interval.ms": config.max_poll_interval_ms,
        "session.timeout.ms": settings.kafka_session_timeout_ms,
        "partition.assignment.strategy": "cooperative-sticky",
        "statistics.interval.ms": config.stats_interval_ms,
        "stats_cb": on_stats,
    }
    if settings.kafka_group_instance_id:
        conf["group.instance.id"] = settings.kafka_group_instance_id
    conf.update(config.consumer_config or {})
    return Consumer(conf)
