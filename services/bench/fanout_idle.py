"""``bench fanout --idle-clients N``: the readers' latency without and with N WebSocket clients
that never read, in alternating rounds (the machine's other load falls on both alike), when
each idle client was closed, and the gateway's memory while one client sends oversized
messages."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamsense.services.bench import hostile_clients
from streamsense.services.bench.fanout_report import Acks, by_second, latencies, pct
from streamsense.services.bench.hostile_clients import POLL_S

#: How long the benchmark waits, after a flow, for the idle clients to be closed.
IDLE_CLOSE_WAIT_S = 60.0
OVERSIZED_MESSAGES = 30
OVERSIZED_BYTES = 15 * 1024 * 1024


@dataclass
class Phase:
    """One measured flow: its sequence numbers, ack times, what each reader got, when."""

    seqs: range
    acks: Acks
    received: list[dict[int, int]]
    gateway_cpu_s: float
    load_average_1m: float

    @property
    def flow_start_s(self) -> float:
        return min(self.acks.mono.values(), default=0) / 1e9

    def summary(self) -> dict[str, Any]:
        return {
            "latency_ms": pct(latencies(self.acks, self.received, self.seqs)),
            "latency_by_second_ms": by_second(self.acks, self.received, self.seqs),
            "gateway_cpu_s": self.gateway_cpu_s,
            "load_average_1m": self.load_average_1m,
        }


def compare(  # noqa: PLR0913 - the benchmark's parts
    first: Phase,
    phase: Callable[[range], Phase],
    rounds: int,
    idle_clients: int,
    port: int,
    gateway_pid: int,
    evicted: Callable[[], int],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """``rounds`` of (without, with idle clients); ``first`` is the first round's without."""
    total = len(first.seqs)
    nxt = first.seqs.stop
    without, with_idle, evictions = [first], [], []
    for r in range(rounds):
        if r:
            without.append(phase(range(nxt, nxt + total)))
            nxt += total
        progress(f"round {r + 1}/{rounds}: with {idle_clients} clients that never read")
        before = evicted()
        with hostile_clients.IdleClients("127.0.0.1", port, idle_clients) as watch:
            p = phase(range(nxt, nxt + total))
            nxt += total
            deadline = time.monotonic() + IDLE_CLOSE_WAIT_S
            while evicted() - before < idle_clients and time.monotonic() < deadline:
                time.sleep(0.05)  # polling the gateway's counter, bounded
            watch.stop()
        with_idle.append(p)
        evictions.append(watch.report(p.flow_start_s))
    progress(f"oversized messages: {OVERSIZED_MESSAGES} of {OVERSIZED_BYTES >> 20} MB")
    oversized = hostile_clients.oversized(
        "127.0.0.1", port, gateway_pid, OVERSIZED_MESSAGES, OVERSIZED_BYTES
    )
    return _figures(without, with_idle, evictions, oversized, idle_clients)


def _figures(
    without: list[Phase],
    with_idle: list[Phase],
    evictions: list[dict[str, Any]],
    oversized: dict[str, Any],
    idle_clients: int,
) -> dict[str, Any]:
    from streamsense.services.gateway.live import SWEEP_S
    from streamsense.services.gateway.settings import GatewaySettings
    from streamsense.services.gateway.wsconn import CLOSE_GRACE_S

    p99_without = [w.summary()["latency_ms"].get("p99", float("nan")) for w in without]
    p99_with = [w.summary()["latency_ms"].get("p99", float("nan")) for w in with_idle]
    ratio = round(float(np.median(p99_with) / np.median(p99_without)), 2)
    # the gateway's limit and close grace, its sweep period and our polling period
    limit = GatewaySettings().gateway_slow_client_s + CLOSE_GRACE_S + SWEEP_S + POLL_S
    after_stall = [e["closed_s_after_stall"].get("max", float("inf")) for e in evictions]
    return {
        "idle_clients": idle_clients,
        "rounds": len(with_idle),
        "without": {
            "p99_ms_per_round": p99_without,
            "latency_ms": pct(np.concatenate([_lat(w) for w in without])),
            "rounds": [w.summary() for w in without],
        },
        "with": {
            "p99_ms_per_round": p99_with,
            "latency_ms": pct(np.concatenate([_lat(w) for w in with_idle])),
            "rounds": [w.summary() for w in with_idle],
        },
        "p99_ratio_of_medians": ratio,
        "meets_target_2x": ratio <= 2.0,
        "eviction_per_round": evictions,
        "close_limit_s": limit,
        "closed_within_limit": all(a <= limit for a in after_stall),
        "oversized": oversized,
    }


def _lat(p: Phase) -> np.ndarray:
    return latencies(p.acks, p.received, p.seqs)
