"""A live terminal view of the results topics (what the demo shows while it runs).

A stack used before may hold inputs nobody consumed (a `produce text` run with no worker): the
demo's workers read those first. Their results are counted apart ("backlog"), and the p50 is
over the inputs captured since the demo started, so it says how fast the pipeline is now, not
how old the backlog was."""

from __future__ import annotations

import statistics
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Consumer
from rich.table import Table

from streamsense.schemas.catalog import TASK_NAMES, results_topics
from streamsense.services.settings import StreamsenseSettings


@dataclass
class TaskStats:
    count: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=500))
    last: str = ""
    model: str = ""
    first_at: float | None = None
    backlog: int = 0  # results for inputs captured before the demo started

    def rate(self) -> float:
        if self.first_at is None or self.count < 2:
            return 0.0
        return self.count / max(time.monotonic() - self.first_at, 1e-6)


class ResultsView:
    def __init__(self, settings: StreamsenseSettings, since_ns: int | None = None) -> None:
        self.since_ns = time.time_ns() if since_ns is None else since_ns
        self.topics = {settings.topic(t): task for t, task in results_topics().items()}
        self.stats = {task: TaskStats() for task in TASK_NAMES}
        self._consumer = Consumer(
            {
                **settings.librdkafka_config(),
                "group.id": f"demo-view-{uuid.uuid4().hex[:6]}",
                "auto.offset.reset": "latest",
                "isolation.level": "read_committed",  # results are written in transactions
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe(list(self.topics))

    def poll(self, timeout: float = 0.2) -> None:
        for m in self._consumer.consume(1000, timeout):
            if m.error() is not None:
                continue
            task = self.topics.get(str(m.topic()))
            if task is None:
                continue
            st = self.stats[task]
            r = orjson.loads(m.value() or b"{}")
            st.count += 1
            if st.first_at is None:
                st.first_at = time.monotonic()
            cap = r.get("timings", {}).get("capture_ns")
            if cap and cap < self.since_ns:
                st.backlog += 1
            elif cap:
                st.latencies_ms.append((time.time_ns() - cap) / 1e6)
            st.model = f"{r['model']['name']}@{r['model']['version']}"
            st.last = f"{r['source_id']}: {summary(task, r)}"

    def table(self) -> Table:
        t = Table(title="streamsense demo: live results", expand=True)
        for col in ("task", "model", "results", "backlog", "per s", "p50 ms", "latest"):
            t.add_column(col)
        for task, st in self.stats.items():
            p50 = statistics.median(st.latencies_ms) if st.latencies_ms else float("nan")
            t.add_row(
                task, st.model, str(st.count), str(st.backlog), f"{st.rate():.1f}",
                f"{p50:.0f}", st.last,
            )  # fmt: skip
        return t

    def close(self) -> None:
        self._consumer.close()


def summary(task: str, r: dict[str, Any]) -> str:
    if task == "detect":
        labels = [f"{d['label']} {d['score']:.2f}" for d in r.get("detections", [])[:4]]
        return f"seq {r['source']['seq']}: " + (", ".join(labels) or "nothing")
    if task == "segment":
        areas = ", ".join(f"{k} {v:.0%}" for k, v in r.get("class_areas", {}).items())
        return f"seq {r['source']['seq']}: {areas}"
    return (
        f"{r.get('label')} ({max(r.get('probs', {'': 0}).values()):.2f}): {r.get('text', '')[:50]}"
    )
