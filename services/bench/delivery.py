"""``streamsense bench pipeline --delivery both``: what exactly-once costs a worker.

The same worker, model and input run through Kafka with ``STREAMSENSE_DELIVERY=exactly-once``
(a Kafka transaction per round of batches) and ``at-least-once`` (acknowledged outputs, then
stored offsets), in alternating rounds so both see the same machine load:

- throughput: a backlog of N messages produced first, consumed to committed results
  (:func:`streamsense.services.bench.pipeline.pipeline`);
- latency: a paced producer at ``rate`` messages/s and a ``read_committed`` reader of the
  results topic in another process, ``receive time - capture time`` per result.
"""

from __future__ import annotations

import os
import statistics
import uuid
from typing import Any

from streamsense.services.bench.pipeline import Progress, _frames, _settings, latency, pipeline
from streamsense.services.workers.settings import WorkerSettings

MODES = ("exactly-once", "at-least-once")


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return float("nan")
    return round(statistics.quantiles(values, n=100)[q - 1], 2)


def run(
    base: WorkerSettings,
    messages: int,
    rate: float,
    seconds: float,
    progress: Progress,
    rounds: int = 3,
) -> dict[str, Any]:
    frames = _frames(24) if base.task != "sentiment" else []
    run_id = uuid.uuid4().hex[:6]
    thr: dict[str, list[float]] = {m: [] for m in MODES}
    lat: dict[str, list[float]] = {m: [] for m in MODES}
    load = [os.getloadavg()[0]]
    for r in range(rounds):
        order = MODES if r % 2 == 0 else MODES[::-1]
        for mode in order:
            s = _settings(base, f"bd{run_id}{r}{mode[0]}.", delivery=mode)
            progress(f"round {r + 1}/{rounds} {mode}: {messages} messages")
            thr[mode].append(pipeline(s, messages, frames, progress))
            progress(f"round {r + 1}/{rounds} {mode}: {rate:g} messages/s for {seconds:g} s")
            lat[mode] += latency(
                _settings(base, f"bd{run_id}{r}{mode[0]}l.", delivery=mode), rate, seconds, frames
            )
            load.append(os.getloadavg()[0])
    per_mode: dict[str, dict[str, Any]] = {
        mode: {
            "items_per_s": round(statistics.median(thr[mode]), 1),
            "runs": [round(x, 1) for x in thr[mode]],
            "p50_ms": _pct(lat[mode], 50),
            "p99_ms": _pct(lat[mode], 99),
            "latency_samples": len(lat[mode]),
        }
        for mode in MODES
    }
    eo, alo = per_mode["exactly-once"], per_mode["at-least-once"]
    return {
        "benchmark": "pipeline-delivery",
        "task": base.task,
        "model": base.model_spec[0],
        "messages_per_round": messages,
        "latency_rate_per_s": rate,
        "modes": per_mode,
        "throughput_ratio_eo_over_alo": round(eo["items_per_s"] / alo["items_per_s"], 3),
        "round_ratios": [
            round(e / a, 3) for e, a in zip(thr["exactly-once"], thr["at-least-once"], strict=True)
        ],
        "p99_cost_ms": round(eo["p99_ms"] - alo["p99_ms"], 2),
        "load_average_1m": {"min": round(min(load), 2), "max": round(max(load), 2)},
        "load": (
            "per round and mode: a backlog of messages_per_round produced first and consumed "
            "to committed results (throughput), then a paced producer at latency_rate_per_s "
            "with a read_committed reader in another process (latency); modes alternate "
            "order each round; medians of the rounds"
        ),
    }
