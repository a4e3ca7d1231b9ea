"""``streamsense bench learning``: online learning on a drifted stream, end to end.

Setup (all fixed-seed, see :mod:`streamsense.services.learner.drifted`): a champion is trained
on airline tweets only and stored as ``sentiment-drift``/1 in a temporary model store; topics get a
fresh prefix. A sentiment worker serves a steady text stream (general-topic tweets, the new
domain) while the learner consumes a labeled stream that starts in the champion's domain and
then drifts. Both run with their default settings.

Figures:
- ``static_accuracy``: the champion's accuracy on the labels after the drift (it never learns);
- ``online_accuracy``: the learner's challenger, scored prequentially on the same labels
  (each label predicted before it is learned);
- ``label_to_live_s``: from the production of the label whose batch triggered the first
  promotion (its ``ts_ns``) to the first result served by the new version;
- ``swap_gap_ms``: the largest gap between consecutive results within 2 s of the swap,
  beside ``steady_gap_ms``, the largest gap elsewhere;
- ``results_lost``: text events without a result (must be 0).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import Topic
from streamsense.schemas.registry import encode
from streamsense.schemas.text import LabeledText, TextEvent
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import TOPICS, ensure_topics, expand
from streamsense.services.learner.app import build_learner
from streamsense.services.learner.drifted import make_stream, store_champion, train_champion
from streamsense.services.learner.keras_text import KerasTextTrainer
from streamsense.services.learner.settings import LearnerSettings
from streamsense.services.runner import running
from streamsense.services.settings import StreamsenseSettings
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.settings import WorkerSettings

Progress = Callable[[str], None]
MODEL = "sentiment-drift"
TOPIC_NAMES = (Topic.TEXT, Topic.LABELS_TEXT, Topic.SENTIMENT, Topic.MODEL_UPDATES)


def provision(settings: StreamsenseSettings) -> list[str]:
    """Create the topics the learning loop needs (with their dead-letter topics)."""
    specs = [s for s in TOPICS if s.name in TOPIC_NAMES]
    ensure_topics(settings, specs)
    return [s.name for s in expand(specs, settings.topic_prefix)]


def drop(settings: StreamsenseSettings, names: list[str]) -> None:
    admin = AdminClient(settings.librdkafka_config())
    for fut in admin.delete_topics(names, operation_timeout=30).values():
        try:
            fut.result()
        except Exception:  # noqa: S110 - best-effort cleanup of a benchmark's topics
            pass


@dataclass(frozen=True, slots=True)
class Served:
    version: str
    label: str
    seq: int
    produced_ns: int
    ref: tuple[int, int]  # (partition, offset) of the text event


class ResultCollector:
    """Reads ``results.sentiment`` in a thread (a fresh group, from the start)."""

    def __init__(self, settings: StreamsenseSettings) -> None:
        self.results: list[Served] = []
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                **settings.librdkafka_config(),
                "group.id": f"bench-results-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",  # results are written in transactions
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([settings.topic(Topic.SENTIMENT)])
        self._thread = threading.Thread(target=self._run, daemon=True, name="results")
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for m in self._consumer.consume(500, 0.1):
                    if m.error() is not None:
                        continue
                    r = orjson.loads(m.value() or b"{}")
                    src = r["source"]
                    self.results.append(
                        Served(
                            r["model"]["version"],
                            r["label"],
                            int(src["seq"]),
                            int(r["timings"]["produced_ns"]),
                            (int(src["partition"]), int(src["offset"])),
                        )
                    )
        finally:
            self._consumer.close()

    def versions(self) -> set[str]:
        return {r.version for r in self.results}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)


def paced(rate: float, stop: threading.Event, send: Callable[[int], bool]) -> threading.Thread:
    """Call ``send(i)`` ``rate`` times a second until it returns False or ``stop`` is set."""

    def target() -> None:
        start = time.monotonic()
        i = 0
        while not stop.is_set():
            ahead = start + i / rate - time.monotonic()
            if ahead > 0:
                stop.wait(ahead)
            if not send(i):
                return
            i += 1

    t = threading.Thread(target=target, daemon=True, name="paced")
    t.start()
    return t


def swap_gaps(results: list[Served], new_version: str) -> tuple[float, float]:
    """(largest gap within 2 s of the first result of ``new_version``, largest elsewhere), ms."""
    times = sorted({(r.produced_ns, r.version) for r in results})
    first_new = min(t for t, v in times if v == new_version)
    near, far = 0.0, 0.0
    for (a, _), (b, _) in zip(times, times[1:], strict=False):
        gap = (b - a) / 1e6
        if abs(b - first_new) <= 2e9:
            near = max(near, gap)
        else:
            far = max(far, gap)
    return near, far


def run(
    settings: StreamsenseSettings,
    downloads: Path,
    *,
    before: int = 400,
    after: int = 2400,
    label_rate: float = 300.0,
    text_rate: float = 200.0,
    timeout_s: float = 180.0,
    progress: Progress = print,
) -> dict[str, Any]:
    t_start = time.perf_counter()
    prefix = f"bench-learning-{uuid.uuid4().hex[:8]}."
    base = settings.model_copy(update={"topic_prefix": prefix})
    ds = make_stream(downloads, before=before, after=after)
    tmp = Path(tempfile.mkdtemp(prefix="streamsense-bench-learning-"))
    names: list[str] = []
    try:
        store = ModelStore(tmp / "store")
        progress(f"training the airline-only champion on {len(ds.train_texts)} tweets")
        t0 = time.perf_counter()
        model = train_champion(ds.train_texts, ds.train_labels)
        store_champion(store, MODEL, model, tmp)
        train_s = time.perf_counter() - t0
        static = KerasTextTrainer(model, store.card(MODEL, "1").labels, 1e-3)
        static_ok = static.predict(ds.texts).argmax(axis=1) == ds.labels
        names = provision(base)
        common = {
            "kafka_bootstrap": base.kafka_bootstrap,
            "topic_prefix": prefix,
            "model_store": store.root,
        }
        worker, handler = build_worker(
            WorkerSettings(
                task="sentiment",
                worker_model=MODEL,
                service_name="bench-learning-worker",
                **common,  # type: ignore[arg-type]
            )
        )
        learner_loop, learner = build_learner(
            LearnerSettings(
                learner_model=MODEL,
                service_name="bench-learning-learner",
                **common,  # type: ignore[arg-type]
            ),
            keep_trace=True,
        )
        producer = Producer(base.model_copy(update={"service_name": "bench-learning-producer"}))
        stop = threading.Event()
        new_domain = ds.texts[ds.drift_at :]
        text_topic, labels_topic = base.topic(Topic.TEXT), base.topic(Topic.LABELS_TEXT)
        sent = {"text": 0, "labels": 0}

        def send_text(i: int) -> bool:
            ev = TextEvent(
                source_id="bench",
                text=new_domain[i % len(new_domain)],
                ts_ns=time.time_ns(),
                seq=i,
                trace_id=f"b{i}",
            )
            producer.produce(text_topic, encode(ev), key=f"s{i % 8}")
            producer.poll(0)
            sent["text"] += 1
            return True

        def send_label(i: int) -> bool:
            if i >= len(ds.texts):
                return False
            ex = LabeledText(
                source_id="bench",
                text=ds.texts[i],
                label=static.labels[int(ds.labels[i])],
                model=MODEL,
                ts_ns=time.time_ns(),
            )
            producer.produce(labels_topic, encode(ex), key="bench")
            sent["labels"] += 1
            return True

        collector = ResultCollector(base)
        deadline = time.monotonic() + timeout_s
        with running(worker), running(learner_loop):
            texts = paced(text_rate, stop, send_text)
            while not collector.results and time.monotonic() < deadline:
                time.sleep(0.05)
            progress(f"worker serving {MODEL}@1; streaming {len(ds.texts)} labels")
            labels = paced(label_rate, stop, send_label)
            while time.monotonic() < deadline and not (
                learner.state.promotions and len(collector.versions()) > 1
            ):
                time.sleep(0.05)
            progress(f"promotions: {[p.version for p in learner.state.promotions]}")
            labels.join(max(0.0, deadline - time.monotonic()))
            while learner_loop.processed < len(ds.texts) and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            texts.join(10)
            producer.flush(30)
            while len(collector.results) < sent["text"] and time.monotonic() < deadline:
                time.sleep(0.05)
        collector.close()
        results = collector.results
        trace = np.array(learner.learner.trace or [], dtype=bool).reshape(-1, 2)
        a = ds.drift_at
        promos = learner.state.promotions
        out: dict[str, Any] = {
            "scenario": (
                f"champion trained on {len(ds.train_texts)} airline tweets; labeled stream of "
                f"{before} airline then {after} general-topic tweets at {label_rate:.0f}/s; "
                f"worker serving general-topic text at {text_rate:.0f}/s"
            ),
            "static_accuracy": float(static_ok[a:].mean()),
            "online_accuracy": float(trace[a:, 1].mean()) if len(trace) > a else None,
            "served_champion_accuracy": float(trace[a:, 0].mean()) if len(trace) > a else None,
            "before_drift": {
                "static_accuracy": float(static_ok[:a].mean()),
                "online_accuracy": float(trace[:a, 1].mean()) if len(trace) >= a else None,
            },
            "labels_learned": int(len(trace)),
            "drift_detections": learner.learner.drift.detections,
            "promotions": [
                {"version": p.version, "reason": p.decision.reason, "n": p.decision.stats.n}
                for p in promos
            ],
            "texts_sent": sent["text"],
            "results": len(results),
            "results_lost": sent["text"] - len({r.ref for r in results}),
            "duplicates": len(results) - len({r.ref for r in results}),
            "versions_served": sorted(collector.versions()),
            "train_champion_s": round(train_s, 1),
            "learner_train_s": round(learner.learner.totals.train_s, 2),
            "wall_s": None,
        }
        if promos and promos[0].version in collector.versions():
            first = min(r.produced_ns for r in results if r.version == promos[0].version)
            out["label_to_live_s"] = round((first - promos[0].trigger_ts_ns) / 1e9, 3)
            out["announce_to_live_s"] = round((first - promos[0].announced_ns) / 1e9, 3)
            near, far = swap_gaps(results, promos[0].version)
            out["swap_gap_ms"] = round(near, 1)
            out["steady_gap_ms"] = round(far, 1)
            out["slot_swap_ms"] = handler.slot.last_swap_gap_ms
            out["served_accuracy"] = _served_accuracy(results, new_domain, ds.labels[a:], static)
        else:
            out["label_to_live_s"] = None
            out["swap_gap_ms"] = None
        out["wall_s"] = round(time.perf_counter() - t_start, 1)
        return out
    finally:
        if names:
            drop(base, names)
        shutil.rmtree(tmp, ignore_errors=True)


def _served_accuracy(
    results: list[Served], texts: list[str], labels: np.ndarray, static: KerasTextTrainer
) -> dict[str, float]:
    """Accuracy of what the worker served, per model version (same texts, cycled)."""
    per: dict[str, list[bool]] = {}
    for r in results:
        truth = static.labels[int(labels[r.seq % len(texts)])]
        per.setdefault(r.version, []).append(r.label == truth)
    return {v: float(np.mean(ok)) for v, ok in sorted(per.items())}
