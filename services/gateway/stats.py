"""Throughput and latency figures computed from the Redis streams over a recent window.

A stream id is the Redis time the sink wrote the entry, so ``id - capture`` is the end-to-end
latency up to the serving layer and ``id - produced`` the sink's share of it.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from streamsense.schemas.catalog import TASK_NAMES
from streamsense.schemas.fields import MAX_ID_CHARS, SAFE_TEXT_PATTERN
from streamsense.services.gateway import stored
from streamsense.services.gateway.live import LiveHub
from streamsense.services.gateway.responses import Percentiles, Stats, TaskStats
from streamsense.services.serving import reads
from streamsense.services.serving.keys import RedisKeys

MAX_SOURCES = 50
SAMPLE_PER_SOURCE = 100


def _percentiles(values: list[float]) -> Percentiles | None:
    if not values:
        return None
    arr = np.asarray(values)
    p50, p95 = np.percentile(arr, [50, 95])
    return Percentiles(
        p50=round(float(p50), 2), p95=round(float(p95), 2), max=round(float(arr.max()), 2)
    )


_VALID_ID = re.compile(SAFE_TEXT_PATTERN)


def source_ids(members: set[Any]) -> list[str]:
    """Set members as sorted ids, without any the contracts refuse (an older writer may have
    stored one): every id listed can be asked for by the routes."""
    out = []
    for m in members:
        source = m.decode("utf-8", "replace") if isinstance(m, bytes) else str(m)
        if len(source) <= MAX_ID_CHARS and _VALID_ID.match(source):
            out.append(source)
    return sorted(out)


def _ns(value: Any) -> int | None:
    """A timestamp in ns as the contracts write it (an int), None for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value else None


async def compute(r: aioredis.Redis, keys: RedisKeys, window_s: float, hub: LiveHub) -> Stats:
    sec, usec = await r.time()
    now_ms = int(sec) * 1000 + int(usec) // 1000
    start = now_ms - int(window_s * 1000)
    tasks: dict[Any, TaskStats] = {}
    for task in TASK_NAMES:
        listing = await reads.members(r, keys.sources(task), MAX_SOURCES)
        sources = source_ids(listing.items)
        pipe = r.pipeline(transaction=False)
        for s in sources:
            pipe.xrevrange(keys.stream(task, s), max="+", min=str(start), count=SAMPLE_PER_SOURCE)
        replies = await pipe.execute() if sources else []
        e2e: list[float] = []
        sink: list[float] = []
        truncated = listing.truncated
        for s, entries in zip(sources, replies, strict=True):
            truncated |= len(entries) >= SAMPLE_PER_SOURCE
            for entry_id, fields in entries:
                ms = int(entry_id.split(b"-")[0])
                doc = stored.result_doc(keys.stream(task, s), fields)
                timings = doc.get("timings") if doc is not None else None
                if not isinstance(timings, dict):
                    continue
                if capture := _ns(timings.get("capture_ns")):
                    e2e.append(ms - capture / 1e6)
                if produced := _ns(timings.get("produced_ns")):
                    sink.append(ms - produced / 1e6)
        n = sum(len(e) for e in replies)
        tasks[task] = TaskStats(
            results=n,
            per_s=round(n / window_s, 2),
            e2e_ms=_percentiles(e2e),
            sink_ms=_percentiles(sink),
            truncated=truncated,
        )
    raw_lag: dict[Any, Any] = await r.hgetall(keys.sink_lag)
    lag: dict[str, int] = {}
    for k, v in raw_lag.items():
        name = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
        if (count := stored.count(v)) is None:
            stored.malformed(keys.sink_lag, f"the lag of {name[:100]!r} is not a count")
        else:
            lag[name] = count
    return Stats(
        window_s=window_s,
        tasks=tasks,
        consumer_lag=lag,
        total_lag=sum(lag.values()),
        live_clients=len(hub.clients),
        live_dropped=hub.dropped,
        live_evicted=hub.evicted,
        now_ms=now_ms,
    )
