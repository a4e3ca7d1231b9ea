"""``streamsense bench soak``: the whole pipeline under mixed load for minutes, watched.

Load, stated in the JSON too: the camera producer loops the sample video (``streamsense samples
make``) at ``fps``; a feeder appends the sample log to a growing file at ``lines_per_s`` that the
text producer follows; the detect, segment and sentiment workers and the Redis sink run as child
processes (``python -m streamsense.services.cli ...``), on prefixed topics of their own.

Every ``sample_s`` seconds: the RSS of every child (psutil), the consumer lag of every group
(committed offsets vs end offsets, from the broker) and the results seen. End-to-end latency is
capture (or line read) time -> the result published by the sink on Redis pub/sub, i.e. through
every stage. After a warm-up, RSS growth is the last minute's mean over the first minute's mean.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from streamsense.schemas.catalog import TASK_NAMES, Topic
from streamsense.services.bench.harness import drop_topics
from streamsense.services.bench.watch import (
    GROUP_TOPICS,
    LagProbe,
    LatencyTap,
    feed,
    rss_mb,
    scrape,
)
from streamsense.services.demo.processes import Supervisor
from streamsense.services.kafka.topics import ensure_topics
from streamsense.services.local import procs
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.settings import StreamsenseSettings

Progress = Callable[[str], None]


def _samples_dir(settings: StreamsenseSettings, progress: Progress) -> Path:
    out = settings.home / "samples"
    if not (out / "sample.mp4").exists() or not (out / "sample.log").exists():
        from streamsense.services.samples.make import make_samples

        progress(f"making the sample video and log in {out}")
        make_samples(out)
    return out


def _start(
    settings: StreamsenseSettings, work: Path, samples: Path, tag: str, fps: float
) -> tuple[Supervisor, dict[str, str]]:
    groups = {name: f"soak-{name}-{tag}" for name in GROUP_TOPICS}
    env = {
        "STREAMSENSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "STREAMSENSE_REDIS_URL": settings.redis_url.get_secret_value(),
        "STREAMSENSE_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMSENSE_MODEL_STORE": str(settings.model_store_dir),
        "STREAMSENSE_REDIS_PREFIX": f"soak{tag}",
    }
    sup = Supervisor(work / "logs", env)
    for task in TASK_NAMES:
        sup.start(f"worker-{task}", "worker", task, env={
            "STREAMSENSE_WORKER_GROUP": groups[task],
            "STREAMSENSE_METRICS_PORT": str(procs.free_port()),
        })  # fmt: skip
    sup.start("sink-redis", "sink", "redis", env={
        "STREAMSENSE_SINK_GROUP": groups["sink"],
        "STREAMSENSE_METRICS_PORT": str(procs.free_port()),
    })  # fmt: skip
    sup.start("camera", "produce", "camera", "--source", str(samples / "sample.mp4"),
              "--camera-id", "cam-soak", "--loop", "--fps", str(fps))  # fmt: skip
    sup.start("text", "produce", "text", "--path", str(work / "live.log"), "--follow",
              "--source-id", "app.log", "--checkpoint", str(work / "text.ckpt"))  # fmt: skip
    return sup, groups


def run(
    settings: StreamsenseSettings,
    seconds: float,
    *,
    fps: float = 5.0,
    lines_per_s: float = 50.0,
    sample_s: float = 5.0,
    png: Path | None = None,
    progress: Progress = print,
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    settings = settings.model_copy(update={"topic_prefix": f"soak{tag}."})
    work = settings.home / "bench" / f"soak-{tag}"
    work.mkdir(parents=True, exist_ok=True)
    samples = _samples_dir(settings, progress)
    ensure_topics(settings)
    warmup = min(max(60.0, 0.2 * seconds), seconds / 2)
    stop = threading.Event()
    (work / "live.log").write_text("")
    args = (samples / "sample.log", work / "live.log", lines_per_s, stop)
    feeder = threading.Thread(target=feed, args=args, daemon=True)
    tap = LatencyTap(settings.redis_url.get_secret_value(), RedisKeys(f"soak{tag}"))
    sup, groups = _start(settings, work, samples, tag, fps)
    feeder.start()
    probe = LagProbe(settings, groups)
    series: list[dict[str, Any]] = []
    t0 = time.monotonic()
    progress(f"soak for {seconds / 60:.1f} min (warm-up {warmup:.0f} s); logs in {sup.log_dir}")
    try:
        while (elapsed := time.monotonic() - t0) < seconds:
            if sup.failed():
                progress(f"a service exited: {[c.name for c in sup.failed()]}")
                break
            series.append({"t": round(elapsed, 1), "rss_mb": rss_mb(sup), "lag": probe.lag(),
                           "results": dict(tap.counts), "inputs": probe.ends()})  # fmt: skip
            if len(series) % 12 == 0:
                progress(f"{elapsed:5.0f} s  results {tap.counts}  lag {series[-1]['lag']}")
            stop.wait(max(0.0, t0 + len(series) * sample_s - time.monotonic()))
        counters = scrape(sup)
    finally:
        stop.set()
        codes = sup.stop()
        probe.close()
        tap.close()
        feeder.join(5)
    result = _report(series, tap, warmup, seconds, fps, lines_per_s, sample_s, t0)
    result["service_counters"] = counters
    result["exit_codes"] = codes
    result["logs"] = str(sup.log_dir)
    drop_topics(settings)
    if png is not None:
        result["png"] = plot(result, series, png)
    result["series"] = str(work / "series.json")
    (work / "series.json").write_bytes(orjson.dumps(series))
    return result


#: RSS growth compares the first and the last minute after the warm-up: they must not overlap.
MIN_RSS_SPAN_S = 120.0


def _window_mean(series: list[dict[str, Any]], name: str, lo: float, hi: float) -> float | None:
    vals = [s["rss_mb"][name] for s in series if lo <= s["t"] < hi and name in s["rss_mb"]]
    return statistics.fmean(vals) if vals else None


def _report(  # noqa: PLR0913 - the run's parameters, echoed in the result
    series: list[dict[str, Any]],
    tap: LatencyTap,
    warmup: float,
    seconds: float,
    fps: float,
    lines_per_s: float,
    sample_s: float,
    t0: float,
) -> dict[str, Any]:
    end = series[-1]["t"] if series else 0.0
    names = sorted({n for s in series for n in s["rss_mb"]})
    rss: dict[str, Any] = {}
    for n in names:
        first = _window_mean(series, n, warmup, warmup + 60)
        last = _window_mean(series, n, end - 60, end + 1)
        peak = max(s["rss_mb"].get(n, 0.0) for s in series)
        growth = None
        if end - warmup >= MIN_RSS_SPAN_S and first and last is not None:
            growth = round(100 * (last - first) / first, 1)
        rss[n] = {"after_warmup_mb": first and round(first, 1), "end_mb": last and round(last, 1),
                  "max_mb": round(peak, 1), "growth_pct": growth}  # fmt: skip
    after = [s for s in series if s["t"] >= warmup]
    lag: dict[str, Any] = {}
    for g in GROUP_TOPICS:
        points = [(s["t"], s["lag"][g]) for s in after if s["lag"].get(g) is not None]
        vals = [v for _, v in points]
        if vals:
            slope = np.polyfit([t for t, _ in points], vals, 1)[0] * 60 if len(vals) > 2 else 0
            lag[g] = {"max": max(vals), "median": statistics.median(vals), "end": vals[-1],
                      "trend_per_min": round(float(slope), 1)}  # fmt: skip
    latency: dict[str, Any] = {}
    measured = [(task, ms) for t, task, ms in tap.samples if t - t0 >= warmup]
    for task in sorted({task for task, _ in measured}):
        ms = np.array([v for k, v in measured if k == task])
        latency[task] = {"n": int(ms.size), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                         "p99_ms": round(float(np.percentile(ms, 99)), 1),
                         "max_ms": round(float(ms.max()), 1)}  # fmt: skip
    span = max(1e-9, end - (after[0]["t"] if after else warmup))
    first_after = after[0]["results"] if after else {}
    throughput = {
        task: round((n - first_after.get(task, 0)) / span, 2)
        for task, n in (series[-1]["results"].items() if series else [])
    }
    first_in = after[0].get("inputs", {}) if after else {}
    rates = {
        topic: round((n - first_in.get(topic, 0)) / span, 2)
        for topic, n in (series[-1].get("inputs", {}).items() if series else [])
    }
    growths = [v["growth_pct"] for v in rss.values() if v["growth_pct"] is not None]
    # bounded: at the end, at most 10 s of the group's input (or 100 messages) not committed
    bounded = {
        g: v["end"] <= max(100, 10 * sum(rates.get(t, 0) for t in GROUP_TOPICS[g]))
        for g, v in lag.items()
    }
    return {
        "load": {
            "minutes": round(seconds / 60, 2),
            "camera_fps": fps,
            "text_lines_per_s": lines_per_s,
            "sample_s": sample_s,
            "warmup_s": warmup,
            "cpus": os.cpu_count(),
        },
        "inputs_per_s": {t: r for t, r in rates.items() if t in (Topic.FRAMES, Topic.TEXT)},
        "results_per_s": throughput,
        "latency_capture_to_redis": latency,
        "rss": rss,
        "consumer_lag": lag,
        "verdict": {
            "rss_growth_max_pct": max(growths) if growths else None,
            # None: fewer than MIN_RSS_SPAN_S after the warm-up, the two minutes would overlap
            "rss_growth_under_10pct": max(growths) < 10 if growths else None,
            "lag_bounded": bounded,
        },
    }


def plot(result: dict[str, Any], series: list[dict[str, Any]], path: Path) -> str:
    """RSS per service, consumer lag per group and results per second over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] / 60 for s in series]
    fig, axes = plt.subplots(3, 1, figsize=(9, 10), sharex=True)
    for name in sorted({n for s in series for n in s["rss_mb"]}):
        axes[0].plot(t, [s["rss_mb"].get(name, np.nan) for s in series], label=name)
    axes[0].set_ylabel("RSS (MiB)")
    for group in GROUP_TOPICS:
        lags = [s["lag"].get(group) for s in series]
        axes[1].plot(t, [np.nan if v is None else v for v in lags], label=group)
    axes[1].set_ylabel("consumer lag (messages)")
    tasks = sorted({k for s in series for k in s["results"]})
    for task in tasks:
        counts = [s["results"].get(task, 0) for s in series]
        rate = [0.0] + [
            (b - a) / max(1e-9, (s2["t"] - s1["t"]))
            for a, b, s1, s2 in zip(counts, counts[1:], series, series[1:], strict=False)
        ]
        axes[2].plot(t, rate, label=task)
    axes[2].set_ylabel("results / s (at Redis)")
    axes[2].set_xlabel("minutes")
    warm = result["load"]["warmup_s"] / 60
    for ax in axes:
        ax.axvline(warm, color="grey", linestyle=":", linewidth=1)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    load = result["load"]
    fig.suptitle(f"streamsense soak: {load['minutes']} min, camera {load['camera_fps']} fps, "
                 f"text {load['text_lines_per_s']} lines/s ({load['cpus']} CPUs)")  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
