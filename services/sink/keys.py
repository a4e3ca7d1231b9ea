"""The Redis layout of the serving layer: one place names every key the sink writes.

With the default prefix ``ss``::

    ss:{task}:{source}:stream    Stream, recent results (XADD MAXLEN ~ N), field ``json``
    ss:{task}:{source}:latest    Hash, the newest result: ``json``, ``written_ms``
    ss:{task}:sources            Set, every source seen for the task
    ss:live:{task}:{source}      pub/sub channel, the result JSON as published (one per source;
                                 the gateway subscribes to the pattern ``ss:live:*``)
    ss:thumb:{camera}            String, the latest downscaled JPEG of a camera (TTL)
    ss:thumb:{camera}:meta       Hash, its width/height/seq/capture_ns/written_ms (same TTL)
    ss:cameras                   Set, every camera a thumbnail was stored for
    ss:sink:lag                  Hash, Kafka consumer lag per ``topic[partition]`` (TTL)

``task`` is one of ``detect``, ``segment``, ``sentiment`` (the model task names). Stream ids are
Redis' own ``<ms>-<n>``, so a stream id doubles as the time the result reached Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["detect", "segment", "sentiment"]
TASKS: tuple[Task, ...] = ("detect", "segment", "sentiment")

#: The logical results topic each task's results arrive on.
TASK_TOPICS: dict[Task, str] = {
    "detect": "results.detections",
    "segment": "results.segments",
    "sentiment": "results.sentiment",
}
FRAMES_TOPIC = "frames"
#: The field that holds the result JSON in stream entries and in the latest hash.
JSON_FIELD = "json"


@dataclass(frozen=True)
class RedisKeys:
    """Key and channel names under one prefix (several deployments can share one Redis)."""

    prefix: str = "ss"

    def stream(self, task: str, source: str) -> str:
        return f"{self.prefix}:{task}:{source}:stream"

    def latest(self, task: str, source: str) -> str:
        return f"{self.prefix}:{task}:{source}:latest"

    def sources(self, task: str) -> str:
        return f"{self.prefix}:{task}:sources"

    def channel(self, task: str, source: str) -> str:
        return f"{self.prefix}:live:{task}:{source}"

    @property
    def channel_pattern(self) -> str:
        """The pattern matching every live channel (one subscriber per gateway process)."""
        return f"{self.prefix}:live:*"

    def parse_channel(self, channel: str) -> tuple[str, str] | None:
        """``(task, source)`` of a live channel name, None for anything else."""
        head = f"{self.prefix}:live:"
        if not channel.startswith(head):
            return None
        task, sep, source = channel[len(head) :].partition(":")
        if not sep or not source:
            return None
        return task, source

    def thumb(self, camera: str) -> str:
        return f"{self.prefix}:thumb:{camera}"

    def thumb_meta(self, camera: str) -> str:
        return f"{self.prefix}:thumb:{camera}:meta"

    @property
    def cameras(self) -> str:
        return f"{self.prefix}:cameras"

    @property
    def sink_lag(self) -> str:
        return f"{self.prefix}:sink:lag"
