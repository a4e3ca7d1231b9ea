"""Wire the Redis sink from small parts: topics -> BatchLoop -> RedisSinkHandler -> Redis."""

from __future__ import annotations

import logging
from typing import Any

import redis

from streamsense.schemas.catalog import Task, Topic, results_topics
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import Producer
from streamsense.services.serving.clients import sync_client
from streamsense.services.sink.handler import Prepared, RedisSinkHandler
from streamsense.services.sink.settings import SinkSettings

log = logging.getLogger(__name__)


def sink_topics(settings: SinkSettings) -> dict[str, Task | None]:
    """The topics the sink consumes, each with its task (None: camera frames, for thumbnails)."""
    topics: dict[str, Task | None] = {
        settings.topic(t): task for t, task in results_topics().items()
    }
    if settings.sink_thumbnails:
        topics[settings.topic(Topic.FRAMES)] = None
    return topics


def status_topic(settings: SinkSettings) -> str:
    """The camera statuses' topic: the sink keeps each camera's newest state in Redis."""
    return settings.topic(Topic.CAMERAS_STATUS)


class RedisSink:
    """The running sink: the batch loop over :class:`RedisSinkHandler` (its health includes
    Redis). ``run``/``stop``/``health`` make it a service for the runner."""

    def __init__(self, settings: SinkSettings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        topics = sink_topics(settings)
        statuses = status_topic(settings)
        self.redis = client or sync_client(
            settings.redis_url.get_secret_value(),
            timeout=settings.sink_redis_timeout_s,
            name=settings.service_name,
        )
        self.handler = RedisSinkHandler(settings, self.redis, topics, statuses)
        config = LoopConfig(
            topics=[*topics, statuses],
            group_id=settings.group_id,
            max_batch=settings.sink_max_batch,
            max_wait_ms=settings.sink_max_wait_ms,
            # results and positions go to Redis in one transaction (writer.py): exactly once
            # whatever the loop's policy; its own outputs are dead letters only
            delivery="at-least-once",
        )
        self.loop: BatchLoop[Prepared] = BatchLoop(
            settings, config, self.handler, Producer(settings)
        )

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.loop.health()

    def stop(self) -> None:
        """Finish the batch in hand (unless Redis is down), commit and return from ``run``."""
        self.loop.stop()

    def run(self, max_messages: int | None = None) -> None:
        log.info("redis sink: writing under prefix %r", self.settings.redis_prefix)
        try:
            self.loop.run(max_messages)
        finally:
            self.redis.close()
