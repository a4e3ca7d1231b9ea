"""Analytics into Redis, the serving layer: a hash per source, an alert stream and a channel.

Keys come from the serving layer (:class:`~streamsense.services.serving.keys.RedisKeys`, prefix
``STREAMSENSE_REDIS_PREFIX``, default ``ss``):

- ``analytics(kind, source)`` (hash): ``{window}.{value}`` of the newest closed window of each
  kind (``tumbling.frames``, ``hopping.negative_rate``, ...) with
  ``{window}.start_ns``/``{window}.end_ns``; ``total.{value}`` since the source was first
  seen; ``events`` (results counted), ``late``, ``last_event_ns``, ``updated_ns``;
- ``alerts`` (stream, ``MAXLEN ~``): one entry per alert, field ``json``;
- ``alerts_channel`` (pub/sub): the same alert JSON, for live dashboards.

Writes are buffered and sent in one pipeline per flush, so the agents never wait on Redis.
A Redis outage is logged and counted; the pending writes are kept (the latest per hash field,
a bounded number of alerts) and retried at the next flush. Kafka stays the source of truth.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streamsense.schemas.analytics import Alert, WindowStat
from streamsense.schemas.registry import encode
from streamsense.services.analytics import metrics as ametrics
from streamsense.services.serving.clients import async_client
from streamsense.services.serving.keys import JSON_FIELD, RedisKeys

log = logging.getLogger(__name__)


class RedisPublisher:
    def __init__(
        self,
        url: str,
        *,
        keys: RedisKeys,
        alerts_maxlen: int = 10_000,
        max_pending_alerts: int = 100_000,
        service: str = "analytics",
        hash_ttl_s: float = 0.0,
    ) -> None:
        """``hash_ttl_s`` > 0: a source's hash expires that long after its last write."""
        self.keys = keys
        self.hash_ttl_s = int(hash_ttl_s)
        self.alerts_maxlen = alerts_maxlen
        self.service = service
        self._url = url
        self._client: aioredis.Redis | None = None
        self._hashes: dict[str, dict[str, str]] = {}
        self._alerts: deque[bytes] = deque(maxlen=max_pending_alerts)
        self.flushes = 0
        self.errors = 0
        #: monotonic time of the first failed flush since the last one that worked, and why
        self.failing_since: float | None = None
        self.last_error = ""

    # -- buffering (called from the agents; never blocks) --------------------------------------

    def put_window(self, stat: WindowStat) -> None:
        fields = self._fields(self.keys.analytics(stat.kind, stat.source_id))
        w = stat.window
        fields[f"{w}.start_ns"] = str(stat.window_start_ns)
        fields[f"{w}.end_ns"] = str(stat.window_end_ns)
        for k, v in stat.values.items():
            fields[f"{w}.{k}"] = _num(v)

    def put_totals(
        self,
        kind: str,
        source_id: str,
        totals: dict[str, float],
        events: int,
        late: int,
        last_event_ns: int | None,
    ) -> None:
        fields = self._fields(self.keys.analytics(kind, source_id))
        for k, v in totals.items():
            fields[f"total.{k}"] = _num(v)
        fields["events"] = str(events)
        fields["late"] = str(late)
        if last_event_ns is not None:
            fields["last_event_ns"] = str(last_event_ns)

    def put_alert(self, alert: Alert) -> None:
        if len(self._alerts) == self._alerts.maxlen:
            ametrics.REDIS_DROPPED.labels(self.service).inc()
        self._alerts.append(encode(alert))

    @property
    def pending(self) -> int:
        return len(self._hashes) + len(self._alerts)

    # -- flushing (a Faust timer) -----------------------------------------------------------------

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = async_client(self._url, read_timeout=2.0, name=self.service)
        return self._client

    async def flush(self) -> None:
        if not self._hashes and not self._alerts:
            return
        hashes, self._hashes = self._hashes, {}
        alerts = list(self._alerts)
        self._alerts.clear()
        now = str(time.time_ns())
        try:
            pipe = self._redis().pipeline(transaction=False)
            for key, fields in hashes.items():
                mapping: dict[Any, Any] = {**fields, "updated_ns": now}
                pipe.hset(key, mapping=mapping)
                if self.hash_ttl_s:
                    pipe.expire(key, self.hash_ttl_s)
            for data in alerts:
                pipe.xadd(
                    self.keys.alerts,
                    {JSON_FIELD: data},
                    maxlen=self.alerts_maxlen,
                    approximate=True,
                )
                pipe.publish(self.keys.alerts_channel, data)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            self.errors += 1
            if self.failing_since is None:
                self.failing_since = time.monotonic()
            self.last_error = repr(exc)[:300]
            ametrics.REDIS_ERRORS.labels(self.service).inc()
            log.warning("redis write failed (%d pending, kept for retry): %r", len(hashes), exc)
            for key, fields in hashes.items():  # newer values written meanwhile win
                self._hashes[key] = {**fields, **self._hashes.get(key, {})}
            newer = list(self._alerts)
            self._alerts.clear()
            self._alerts.extend(alerts + newer)
            return
        self.flushes += 1
        self.failing_since = None

    def failing_for(self) -> float:
        """Seconds since the writes began to fail (0 while they work)."""
        return 0.0 if self.failing_since is None else time.monotonic() - self.failing_since

    def health(self, stalled_after_s: float) -> tuple[bool, dict[str, Any]]:
        """Not ok once writes have failed for ``stalled_after_s``: the dashboard's analytics
        and alerts are stale then, whatever Kafka says."""
        detail: dict[str, Any] = {"redis_errors": self.errors, "redis_pending": self.pending}
        failing = self.failing_for()
        if failing < stalled_after_s:
            return True, detail
        detail["redis_stalled"] = (
            f"Redis writes failing for {failing:.0f} s ({self.last_error}); windows and alerts "
            "still go to Kafka and are kept for Redis until it answers"
        )
        return False, detail

    async def close(self) -> None:
        await self.flush()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _fields(self, key: str) -> dict[str, str]:
        fields = self._hashes.get(key)
        if fields is None:
            fields = self._hashes[key] = {}
        return fields


def _num(v: Any) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else repr(f)
