"""The writes that fill the layout of :mod:`~streamsense.services.serving.keys`.

Each method queues commands on a caller's pipeline and returns how many it queued, so a
caller that sends a whole batch in one round trip can map every reply back to its item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streamsense.services.serving.keys import JSON_FIELD, RedisKeys

#: How long the sink's lag hash lives without an update.
LAG_TTL_S = 60
#: Most ids one :meth:`LayoutWriter.forget_idle` call drops from one listing.
FORGET_BATCH = 500
#: Dead-lettered offsets the sink keeps per results partition (the newest): far more than one
#: uncommitted round can hold (a round commits every 100 ms or so).
DEAD_KEPT = 10_000

#: Drop the ids of KEYS[1] (a sorted set scored by last write, ms) scored at or below ARGV[1]
#: from it and from KEYS[2] (a set, or a hash when ARGV[3] is "hash"), at most ARGV[2] of
#: them; returns how many.
_FORGET_IDLE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  redis.call('ZREM', KEYS[1], unpack(ids))
  if ARGV[3] == 'hash' then
    redis.call('HDEL', KEYS[2], unpack(ids))
  else
    redis.call('SREM', KEYS[2], unpack(ids))
  end
end
return #ids
"""


@dataclass(frozen=True)
class LayoutWriter:
    keys: RedisKeys
    stream_maxlen: int = 1000
    thumb_ttl_s: int = 60
    #: a source's stream and latest result expire this long after its last result, and
    #: :meth:`forget_idle` drops it from the listings; 0 keeps everything for ever
    source_ttl_s: int = 7 * 86_400

    def result(
        self, pipe: Any, task: str, source: str, value: bytes, *, publish: bool = True
    ) -> int:
        """Append a result to its source's stream and publish it live (not when replaying
        history: ``publish=False``)."""
        pipe.xadd(
            self.keys.stream(task, source),
            {JSON_FIELD: value},
            maxlen=self.stream_maxlen,
            approximate=True,
        )
        if not publish:
            return 1
        pipe.publish(self.keys.channel(task, source), value)
        return 2

    def forget_history(self, pipe: Any, task: str, source: str) -> int:
        """Drop a source's stream (before it is replayed from Kafka)."""
        pipe.delete(self.keys.stream(task, source))
        return 1

    def latest(self, pipe: Any, task: str, source: str, value: bytes, written_ms: int) -> int:
        """Make ``value`` the source's latest result."""
        pipe.hset(
            self.keys.latest(task, source), mapping={JSON_FIELD: value, "written_ms": written_ms}
        )
        return 1

    def source(self, pipe: Any, task: str, source: str) -> int:
        """Record that ``task`` has results for ``source``."""
        pipe.sadd(self.keys.sources(task), source)
        return 1

    def seen(self, pipe: Any, task: str, source: str, written_ms: int) -> int:
        """Note ``source``'s last result for ``task`` (``written_ms``): its stream and latest
        result live ``source_ttl_s`` from now, and :meth:`forget_idle` keeps it listed."""
        if not self.source_ttl_s:
            return 0
        k = self.keys
        pipe.zadd(k.sources_seen(task), {source: written_ms})
        pipe.expire(k.stream(task, source), self.source_ttl_s)
        pipe.expire(k.latest(task, source), self.source_ttl_s)
        return 3

    def forget_idle(self, pipe: Any, tasks: Iterable[str], now_ms: int) -> int:
        """Drop from the listings the sources (per task) and cameras idle for longer than
        ``source_ttl_s`` (their keys have expired), and the statuses of cameras silent that
        long, up to :data:`FORGET_BATCH` per listing."""
        if not self.source_ttl_s:
            return 0
        cutoff, k = now_ms - self.source_ttl_s * 1000, self.keys
        listings = [(k.sources_seen(t), k.sources(t), "set") for t in tasks]
        listings += [
            (k.cameras_seen, k.cameras, "set"),
            (k.camera_status_seen, k.camera_status, "hash"),
        ]
        for seen, members, kind in listings:
            pipe.eval(_FORGET_IDLE, 2, seen, members, cutoff, FORGET_BATCH, kind)
        return len(listings)

    def thumbnail(
        self, pipe: Any, camera: str, jpeg: bytes, meta: Mapping[str, int], written_ms: int
    ) -> int:
        """Store a camera's newest thumbnail and its metadata, both with the thumbnail TTL."""
        k, ttl = self.keys, self.thumb_ttl_s
        pipe.set(k.thumb(camera), jpeg, ex=ttl)
        pipe.hset(k.thumb_meta(camera), mapping={**meta, "written_ms": written_ms})
        pipe.expire(k.thumb_meta(camera), ttl)
        pipe.sadd(k.cameras, camera)
        pipe.zadd(k.cameras_seen, {camera: written_ms})
        return 5

    def camera_status(self, pipe: Any, camera: str, value: bytes | None, *, written_ms: int) -> int:
        """Make ``value`` the camera's status and publish it; ``None`` (a tombstone on the
        compacted topic) forgets the camera. An upsert: writing it twice changes nothing.
        A status not renewed for ``source_ttl_s`` goes with :meth:`forget_idle`."""
        k = self.keys
        if value is None:
            pipe.hdel(k.camera_status, camera)
            pipe.zrem(k.camera_status_seen, camera)
            return 2
        pipe.hset(k.camera_status, camera, value)
        pipe.publish(k.camera_status_channel, value)
        if not self.source_ttl_s:
            return 2
        pipe.zadd(k.camera_status_seen, {camera: written_ms})
        return 3

    def positions(self, pipe: Any, positions: Mapping[str, int]) -> int:
        """The next offset to apply per results partition (with the batch it follows)."""
        pipe.hset(self.keys.sink_positions, mapping=dict(positions))
        return 1

    def dead_letters(self, pipe: Any, field: str, offsets: Iterable[int]) -> int:
        """Offsets of results partition ``field`` that the sink dead-letters with this batch."""
        key = self.keys.sink_dead(field)
        pipe.zadd(key, {str(o): o for o in offsets})
        pipe.zremrangebyrank(key, 0, -(DEAD_KEPT + 1))
        return 2

    def forget_dead(self, pipe: Any, field: str, below: int) -> int:
        """Drop the dead-lettered offsets of ``field`` below ``below`` (committed past)."""
        pipe.zremrangebyscore(self.keys.sink_dead(field), "-inf", f"({below}")
        return 1

    def lag(self, pipe: Any, lag: Mapping[str, int]) -> int:
        """The sink's consumer lag per ``topic[partition]``."""
        pipe.hset(self.keys.sink_lag, mapping=dict(lag))
        pipe.expire(self.keys.sink_lag, LAG_TTL_S)
        return 2
