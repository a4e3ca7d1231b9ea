"""``streamsense bench models``: throughput and latency of every zoo model, bare (no Kafka).

Each model is loaded from the store and warmed up, then ``predict_batch`` (the full adapter
path a worker calls: checks, resize, model, decoding, NMS, RLE) is timed at batch sizes 1, 2,
4, ... up to the model's ``max_batch``. A run repeats calls for at least ``min_seconds``;
figures are medians over ``runs`` runs. Images are scikit-image's ``astronaut`` (512x512);
texts are short review-like sentences.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamsense.models.base import ModelAdapter
from streamsense.models.exceptions import ModelNotFoundError
from streamsense.models.runtime import configure_devices
from streamsense.models.store import ModelStore

log = logging.getLogger(__name__)

TEXTS = (
    "the update fixed everything, great job",
    "still waiting for support after three days",
    "the meeting moved to thursday",
    "this camera is terrible in low light",
    "love the new dashboard",
    "delivery arrived on time",
    "worst checkout flow I have ever used",
    "it works",
)


def _sample(adapter: ModelAdapter[Any, Any]) -> Any:
    if adapter.task == "sentiment":
        return None
    from skimage import data

    return data.astronaut()


def _batch(adapter: ModelAdapter[Any, Any], image: Any, size: int) -> list[Any]:
    if image is None:
        return [TEXTS[i % len(TEXTS)] for i in range(size)]
    return [image] * size


def _measure(
    adapter: ModelAdapter[Any, Any], items: list[Any], runs: int, min_seconds: float
) -> tuple[float, list[float]]:
    """(median items/s over runs, every call's latency in seconds)."""
    rates, latencies = [], []
    for _ in range(runs):
        calls = 0
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            adapter.predict_batch(items)
            latencies.append(time.perf_counter() - t0)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds and calls >= 2:
                break
        rates.append(calls * len(items) / elapsed)
    return statistics.median(rates), latencies


def bench_adapter(
    adapter: ModelAdapter[Any, Any], *, runs: int = 5, min_seconds: float = 0.25
) -> dict[str, Any]:
    adapter.warmup()
    image = _sample(adapter)
    by_batch: dict[str, float] = {}
    batch1: dict[str, float] = {}
    size = 1
    while size <= adapter.max_batch:
        rate, latencies = _measure(adapter, _batch(adapter, image, size), runs, min_seconds)
        by_batch[str(size)] = round(rate, 1)
        if size == 1:
            ms = sorted(x * 1000 for x in latencies)
            batch1 = {
                "items_per_s": round(rate, 1),
                "p50_ms": round(statistics.median(ms), 3),
                "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 3),
            }
        log.info("%s batch %d: %.1f items/s", adapter.name, size, rate)
        size *= 2
    best = max(by_batch, key=lambda k: by_batch[k])
    return {
        "version": adapter.version,
        "task": adapter.task,
        "batch1": batch1,
        "by_batch": by_batch,
        "best": {"batch": int(best), "items_per_s": by_batch[best]},
    }


def run_models_bench(
    store: Path,
    json_path: Path | None = None,
    *,
    models: Sequence[str] | None = None,
    runs: int = 5,
    min_seconds: float = 0.25,
) -> dict[str, Any]:
    """Benchmark every zoo model (or ``models``) in ``store``; write and return the JSON."""
    from streamsense.models.zoo import ZOO

    model_store = ModelStore(store)
    names = list(models) if models is not None else [m.name for m in ZOO]
    missing = [n for n in names if not model_store.versions(n)]
    if missing:
        msg = f"{missing} not in {store}: run `streamsense models fetch` first"
        raise ModelNotFoundError(msg)
    device = configure_devices()
    import tensorflow as tf

    report: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "device": device,
            "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "method": {
            "path": "adapter.predict_batch (preprocessing + model + postprocessing)",
            "images": "skimage.data.astronaut() 512x512 RGB",
            "runs": runs,
            "min_seconds_per_run": min_seconds,
            "statistic": "median items/s over runs; latency percentiles over all batch-1 calls",
        },
        "models": {},
    }
    for name in names:
        adapter = model_store.load(name)
        report["models"][name] = bench_adapter(adapter, runs=runs, min_seconds=min_seconds)
    report["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
