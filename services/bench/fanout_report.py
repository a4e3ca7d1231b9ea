"""The figures of ``bench fanout``: latency percentiles per (client, result) and their
breakdown, and the comparison with idle clients connected."""

from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np

#: Results sent before the measured ones (the path warms up).
WARMUP = 20


class Acks(Protocol):
    mono: dict[int, int]
    wall: dict[int, int]
    failed: int


def pct(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {}
    p = np.percentile(values, [50, 90, 99])
    return {
        "p50": round(float(p[0]), 2),
        "p90": round(float(p[1]), 2),
        "p99": round(float(p[2]), 2),
        "max": round(float(values.max()), 2),
        "mean": round(float(values.mean()), 2),
    }


def latencies(acks: Acks, received: list[dict[int, int]], seqs: range) -> np.ndarray:
    """Every (client, result) latency of a phase after its warm-up, ms."""
    measured = [s for s in seqs[WARMUP:] if s in acks.mono]
    lat = [(r[s] - acks.mono[s]) / 1e6 for s in measured for r in received if s in r]
    return np.array(lat)


def by_second(acks: Acks, received: list[dict[int, int]], seqs: range) -> list[list[float]]:
    """The time course: per second of the flow (by ack time), that second's p50 and p99."""
    measured = [s for s in seqs[WARMUP:] if s in acks.mono]
    if not measured:
        return []
    t0 = acks.mono[measured[0]]
    rows: dict[int, list[float]] = {}
    for s in measured:
        sec = (acks.mono[s] - t0) // 1_000_000_000
        rows.setdefault(sec, []).extend((r[s] - acks.mono[s]) / 1e6 for r in received if s in r)
    return [
        [sec, *np.round(np.percentile(v, [50, 99]), 1).tolist()]
        for sec, v in sorted(rows.items())
        if v
    ]


def report(  # noqa: PLR0913
    clients: int,
    messages: int,
    rate: float,
    acks: Acks,
    received: list[dict[int, int]],
    stream_ms: dict[int, int],
    seqs: range,
) -> dict[str, Any]:
    measured = [s for s in seqs[WARMUP:] if s in acks.mono]
    # per message (rows) and client (columns); NaN where a client did not get it
    grid = np.array(
        [[(r[s] - acks.mono[s]) / 1e6 if s in r else np.nan for r in received] for s in measured]
    ).reshape(len(measured), clients)
    lat = grid[~np.isnan(grid)]
    got = ~np.isnan(grid).all(axis=1)
    first = np.nanmin(grid[got], axis=1) if got.any() else np.array([])
    spread = (np.nanmax(grid[got], axis=1) - first) if got.any() else np.array([])
    to_redis = np.array(
        [stream_ms[s] - acks.wall[s] / 1e6 for s in measured if s in stream_ms and s in acks.wall]
    )
    expected = clients * messages
    return {
        "benchmark": "fanout",
        "path": "Kafka ack -> sink -> Redis pub/sub -> gateway -> WebSocket client",
        "clients": clients,
        "messages": messages,
        "rate_per_s": rate,
        "warmup_messages": WARMUP,
        "deliveries_expected": expected,
        "deliveries_received": int(lat.size),
        "lost": expected - int(lat.size),
        "produce_failed": acks.failed,
        "latency_ms": pct(lat),
        "breakdown_ms": {
            "ack_to_redis": pct(to_redis),
            "ack_to_first_client": pct(first),
            "first_to_last_client": pct(spread),
        },
        "latency_by_second_ms": by_second(acks, received, seqs),
        "target_p99_ms": 50,
        "meets_target": bool(lat.size and np.percentile(lat, 99) < 50),
        "cpus": os.cpu_count(),
    }
