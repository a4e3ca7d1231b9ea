"""``streamsense bench latency``: latency against throughput, in the manner of Triton's
perf_analyzer.

For each offered rate, a paced generator (another process) sends inputs to a real worker and
the Redis sink (children); the tap times every result from its capture time to the sink's
publish from Redis. Per rate: achieved throughput (results in the measured window / window)
and p50/p90/p99; written as JSON and as a PNG of latency against throughput.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from streamsense.schemas.catalog import Task
from streamsense.services.bench.harness import Rig, Sample, rig
from streamsense.services.bench.harness import generate as send
from streamsense.services.settings import StreamsenseSettings

#: The first part of each rate's run is not measured (batches and queues settle).
WARMUP_FRACTION = 0.2


def percentiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        return {"p50": None, "p90": None, "p99": None}
    q = statistics.quantiles(values, n=100)
    return {"p50": round(q[49], 2), "p90": round(q[89], 2), "p99": round(q[98], 2)}


def hops_p50(window: list[Sample]) -> dict[str, float] | None:
    """Where the time of a median result goes: capture -> the worker's read (the producer, the
    broker, the worker's fetch), in the worker (batching, the model, the produce call; of it the
    model's call), and the worker's produce -> the sink's publish (the broker, a transaction's
    commit in exactly-once, the sink's fetch, the Redis write)."""
    hops = [s.hops for s in window if s.hops is not None]
    if len(hops) < 2:
        return None
    names = ("to_worker", "in_worker", "model", "to_redis")
    return {n: round(statistics.median(h[i] for h in hops), 2) for i, n in enumerate(names)}


def measure(
    r: Rig, rate: float, seconds: float, frames: list[bytes], sources: int
) -> dict[str, Any]:
    """One offered rate, spread over ``sources`` sources (cameras or log files)."""
    plan = [(f"src-{i}", rate / sources) for i in range(sources)]
    start = time.monotonic()
    sent = send(r.settings, r.task, plan, seconds, frames)
    end = time.monotonic()
    # results of the last inputs arrive after the generator ends: wait for the queue to drain
    drain_until = end + 30
    while time.monotonic() < drain_until and len(r.tap.window(start, time.monotonic())) < sent:
        time.sleep(0.2)
    t0 = start + WARMUP_FRACTION * (end - start)
    window = r.tap.window(t0, end)
    lat = [s.latency_ms for s in window]
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(len(window) / max(end - t0, 1e-6), 1),
        "sent": sent,
        "results": len(r.tap.window(start, time.monotonic())),
        **percentiles(lat),
        "hops_p50_ms": hops_p50(window),
        "samples": len(lat),
        "tap_errors": r.tap.errors,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def run(
    base: StreamsenseSettings,
    task: Task,
    rates: list[float],
    seconds: float,
    work: Path,
    png: Path | None = None,
    sources: int = 4,
    progress: Any = print,
) -> dict[str, Any]:
    from streamsense.services.bench.pipeline import _frames

    frames = _frames(24) if task != "sentiment" else []
    points = []
    with rig(base, task, work) as r:
        progress(f"worker {task} and sink up; logs in {r.sup.log_dir}")
        for rate in rates:
            progress(f"{rate:g}/s for {seconds:g} s")
            points.append(measure(r, rate, seconds, frames, sources))
            progress(f"  -> {points[-1]}")
    result = {
        "benchmark": "latency",
        "task": task,
        "delivery": base.delivery,
        "sources": sources,
        "seconds_per_rate": seconds,
        "points": points,
        "load": (
            "per rate: a paced generator in its own process sends inputs spread over "
            "`sources` sources to a worker and the Redis sink (child processes); latency is "
            "capture time to the sink's publish from Redis, measured after the first "
            f"{int(WARMUP_FRACTION * 100)}% of each run"
        ),
    }
    if png is not None:
        plot(result, png)
    return result


def plot(result: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in result["points"] if p["p50"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    for q, style in (("p50", "o-"), ("p90", "s--"), ("p99", "^:")):
        ax.plot([p["achieved_per_s"] for p in pts], [p[q] for p in pts], style, label=q)
    ax.set_xlabel("achieved throughput (results/s)")
    ax.set_ylabel("capture -> Redis latency (ms)")
    ax.set_yscale("log")
    ax.set_title(f"{result['task']}: latency against throughput ({result['delivery']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
