"""``streamsense bench overload``: a camera fleet faster than the worker can serve.

First the worker's capacity is measured (its handler alone, frames in memory, the model's best
batch: :func:`streamsense.services.bench.pipeline.bare`); then ``cameras`` cameras at ``fps``
each are sent to a real worker and the Redis sink, and for each camera the result rate,
p50/p99 capture-to-Redis latency and the frames skipped as behind are reported, with the
worker's mean model time per batch. The goals of issue 18: p99 at most 3x the batch model
time plus 200 ms, and every camera's result rate within 20% of the mean.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from streamsense.schemas.catalog import Task
from streamsense.services.bench.harness import generate as send
from streamsense.services.bench.harness import rig
from streamsense.services.bench.latency import WARMUP_FRACTION, percentiles
from streamsense.services.settings import StreamsenseSettings
from streamsense.services.workers.settings import WorkerSettings


def capacity(base: StreamsenseSettings, task: Task, seconds: float, frames: list[bytes]) -> float:
    from streamsense.services.bench.pipeline import bare

    s = WorkerSettings.model_validate({**base.model_dump(), "task": task})
    return bare(s, seconds, frames)[0]


def run(
    base: StreamsenseSettings,
    task: Task,
    cameras: int,
    fps: float | None,
    seconds: float,
    work: Path,
    progress: Any = print,
    times: float = 2.0,
) -> dict[str, Any]:
    """``fps`` per camera, or (when None) ``times`` the measured capacity over the fleet."""
    from streamsense.services.bench.pipeline import _frames

    frames = _frames(24)
    progress("measuring the worker's capacity (its handler alone, frames in memory)")
    cap = capacity(base, task, min(seconds, 10.0), frames)
    fps = fps if fps is not None else round(times * cap / cameras, 2)
    offered = cameras * fps
    progress(f"capacity {cap:.1f} frames/s; offering {offered:g} ({offered / cap:.1f}x)")
    names = [f"cam-{i}" for i in range(cameras)]
    with rig(base, task, work) as r:
        start = time.monotonic()
        sent = send(r.settings, task, [(n, fps) for n in names], seconds, frames)
        end = time.monotonic()
        time.sleep(2)  # results of the last frames still in the worker
        health = r.health("worker")
        model_s = r.metric("worker", "streamsense_model_seconds_sum")
        batches = r.metric("worker", "streamsense_model_seconds_count")
    t0 = start + WARMUP_FRACTION * (end - start)
    window = r.tap.window(t0, end)
    span = max(end - t0, 1e-6)
    per_camera: dict[str, dict[str, Any]] = {}
    rates: list[float] = []
    for n in names:
        lat = [s.latency_ms for s in window if s.source == n]
        rates.append(round(len(lat) / span, 2))
        per_camera[n] = {"results_per_s": rates[-1], **percentiles(lat)}
    mean = statistics.mean(rates) if rates else 0.0
    served = sum(rates)
    overall = percentiles([s.latency_ms for s in window])
    batch_ms = 1000 * model_s / batches if batches else float("nan")
    p99 = overall["p99"]
    return {
        "benchmark": "overload",
        "task": task,
        "delivery": base.delivery,
        "capacity_frames_per_s": round(cap, 1),
        "cameras": cameras,
        "fps_per_camera": fps,
        "offered_per_s": offered,
        "multiple_of_capacity": round(offered / cap, 2),
        "served_per_s": round(served, 2),
        "multiple_of_served": round(offered / served, 2) if served else None,
        "sent": sent,
        "per_camera": per_camera,
        "skipped_behind": health.get("skipped_behind"),
        "skipped": health.get("skipped"),
        "overall": overall,
        "mean_batch_model_ms": round(batch_ms, 1),
        "transaction_commit_ms": health.get("commit_ms"),  # exactly-once: moving average
        "goals": {
            "p99_limit_ms": round(3 * batch_ms + 200, 1),
            "p99_met": p99 is not None and p99 <= 3 * batch_ms + 200,
            "rate_spread": round(max(abs(x - mean) for x in rates) / mean, 3) if mean else None,
            "fair": bool(mean) and all(abs(x - mean) <= 0.2 * mean for x in rates),
        },
        "load_average_1m": round(os.getloadavg()[0], 2),
        "load": (
            f"{cameras} cameras at {fps:g} fps of 720p JPEG from a paced generator in its own "
            f"process for {seconds:g} s, to a worker and the Redis sink (child processes); "
            f"the first {int(WARMUP_FRACTION * 100)}% of the run is not measured"
        ),
    }
