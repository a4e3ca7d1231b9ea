"""Wire the Redis sink from small parts: topics -> BatchLoop -> RedisSinkHandler -> Redis."""

from __future__ import annotations

import logging
import signal
from typing import Any

import redis

from streamsense.services.kafka.consumer import BatchLoop, LoopConfig
from streamsense.services.kafka.exceptions import FatalHandlerError
from streamsense.services.kafka.producer import Producer
from streamsense.services.runner import start_health
from streamsense.services.sink.client import sync_client
from streamsense.services.sink.handler import Prepared, RedisSinkHandler
from streamsense.services.sink.keys import FRAMES_TOPIC, TASK_TOPICS, TASKS, Task
from streamsense.services.sink.settings import SinkSettings

log = logging.getLogger(__name__)


def sink_topics(settings: SinkSettings) -> dict[str, Task | None]:
    """The topics the sink consumes, each with its task (None: camera frames, for thumbnails)."""
    topics: dict[str, Task | None] = {settings.topic(TASK_TOPICS[t]): t for t in TASKS}
    if settings.sink_thumbnails:
        topics[settings.topic(FRAMES_TOPIC)] = None
    return topics


class RedisSink:
    """The running sink: the batch loop plus a health check that includes Redis."""

    def __init__(self, settings: SinkSettings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        topics = sink_topics(settings)
        self.redis = client or sync_client(
            settings.redis_url.get_secret_value(), timeout=settings.sink_redis_timeout_s
        )
        self.handler = RedisSinkHandler(settings, self.redis, topics)
        config = LoopConfig(
            topics=list(topics),
            group_id=settings.sink_group,
            max_batch=settings.sink_max_batch,
            max_wait_ms=settings.sink_max_wait_ms,
        )
        self.loop: BatchLoop[Prepared] = BatchLoop(
            settings, config, self.handler, Producer(settings)
        )

    def health(self) -> tuple[bool, dict[str, Any]]:
        ok, detail = self.loop.health()
        detail.update(
            redis_ok=self.handler.redis_ok,
            redis_error=self.handler.last_error,
            written=self.handler.written,
            redis_retries=self.handler.retries,
            dead_lettered=self.loop.dead_lettered,
        )
        return ok and self.handler.redis_ok, detail

    def stop(self) -> None:
        """Finish the batch in hand (unless Redis is down), commit and return from ``run``."""
        self.loop.stop()
        self.handler.stop()

    def run(self, max_messages: int | None = None) -> None:
        try:
            self.loop.run(max_messages)
        finally:
            self.redis.close()

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT with ``/healthz`` and ``/metrics``; returns an exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
        health = start_health(self.settings, self.health)
        log.info(
            "redis sink: %s -> redis (group %s, prefix %r)",
            ", ".join(self.loop.config.topics),
            self.settings.sink_group,
            self.settings.redis_prefix,
        )
        try:
            self.run()
        except FatalHandlerError as exc:
            log.error("%s", exc)
            return 1
        finally:
            if health is not None:
                health.stop()
        return 0
