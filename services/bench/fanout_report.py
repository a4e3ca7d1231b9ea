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
    # the time course: per second of the flow (by ack time), the p50 and p99 of that second
    t0 = acks.mono[measured[0]] if measured else 0
    second = np.array([(acks.mono[s] - t0) // 1_000_000_000 for s in measured])
    by_second = [
        [int(sec), *np.round(np.nanpercentile(grid[second == sec], [50, 99]), 1).tolist()]
        for sec in np.unique(second)
        if not np.isnan(grid[second == sec]).all()
    ]
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
        "latency_by_second_ms": by_second,
        "target_p99_ms": 50,
        "meets_target": bool(lat.size and np.percentile(lat, 99) < 50),
        "cpus": os.cpu_count(),
    }


def compare(
    alone: dict[str, Any],
    with_idle: dict[str, Any],
    idle: dict[str, Any],
    stats: dict[str, Any],
    bytes_per_s: float,
) -> dict[str, Any]:
    """The readers' latency with the idle clients next to the run without them.

    An idle client looks stalled from outside once its own receive buffer is full; the gateway
    counts from when its buffers for the client are full too (kernel send buffer, doubled by
    Linux, plus the transport's high-water mark), which takes ``3 * send_buffer / bytes_per_s``
    longer. The close limit is the gateway's setting plus the close grace, and the gateway
    looks at stalled clients every ``SWEEP_S`` (or on each result)."""
    from streamsense.services.gateway.live import SWEEP_S
    from streamsense.services.gateway.settings import GatewaySettings
    from streamsense.services.gateway.wsconn import CLOSE_GRACE_S

    p99, p99_idle = alone["latency_ms"].get("p99"), with_idle["latency_ms"].get("p99")
    ratio = round(p99_idle / p99, 2) if p99 and p99_idle else None
    gw = GatewaySettings()
    limit = gw.gateway_slow_client_s + CLOSE_GRACE_S + SWEEP_S
    fill_s = round(3 * gw.gateway_ws_send_buffer / bytes_per_s, 2)
    after_stall = idle["eviction"]["closed_s_after_stall"]
    return {
        "idle_clients": idle["eviction"]["clients"],
        "latency_ms": with_idle["latency_ms"],
        "latency_by_second_ms": with_idle["latency_by_second_ms"],
        "lost": with_idle["lost"],
        "p99_ratio_to_without": ratio,
        "meets_target_2x": ratio is not None and ratio <= 2.0,
        "eviction": idle["eviction"],
        "evicted_by_gateway": stats.get("live_evicted"),
        "close_limit_s": limit,
        "gateway_buffer_fill_s": fill_s,
        "closed_within_limit": bool(after_stall) and after_stall["max"] <= limit + fill_s,
        "load_average_1m": idle["load_average_1m"],
        "oversized": idle["oversized"],
    }
