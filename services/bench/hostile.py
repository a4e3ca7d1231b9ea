"""``streamsense bench hostile``: the services under a stream with hostile records, against the
same stream without them, side by side in one run.

The detect, segment and sentiment workers, the Redis sink and a text producer (following a file
the giant lines go to) run as child processes on prefixed topics of their own, from a copy of
the model store that also holds an unsafe version of the detector (offered as champion by one
hostile class). After a warm-up, a clean phase sends ``rate`` records/s (frames and text lines),
then a poisoned phase the same with one hostile record in ``1 / poison_fraction``, the classes of
:mod:`streamsense.services.bench.hostile_load` in turn. Every second: each child's RSS (psutil);
a child that exits is counted as a restart and started again, as a supervisor would. Per phase:
records sent per class, results and dead letters written (end offsets of the topics).
Verdict: no restart, and each service's peak RSS poisoned within twice its clean peak.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Consumer, TopicPartition

from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import TASK_NAMES, dlq_topic, results_topics
from streamsense.services.bench.harness import drop_topics
from streamsense.services.bench.hostile_load import Load, unsafe_version
from streamsense.services.demo.processes import Child, Supervisor
from streamsense.services.kafka.topics import TOPICS, ensure_topics
from streamsense.services.local import procs
from streamsense.services.settings import StreamsenseSettings

Progress = Callable[[str], None]
MB = 1024 * 1024
#: The services the verdict is about (the text producer is watched, not judged).
JUDGED = (*(f"worker-{t}" for t in TASK_NAMES), "sink-redis")


class Children:
    """The services, each restarted when it exits (counted), with its RSS sampled."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.specs: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {}
        self.live: dict[str, Child] = {}
        self.restarts: dict[str, list[int | None]] = {}
        self.ports: dict[str, int] = {}

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        port = procs.free_port()
        self.ports[name] = port
        env = {**(env or {}), "STREAMSENSE_METRICS_PORT": str(port)}
        self.specs[name] = (args, env)
        self.restarts.setdefault(name, [])
        self.live[name] = self.sup.start(name, *args, env=env)

    def check(self) -> None:
        for name, child in list(self.live.items()):
            if child.proc is not None and child.proc.poll() is not None:
                self.restarts[name].append(child.proc.returncode)
                args, env = self.specs[name]
                self.live[name] = self.sup.start(name, *args, env=env)

    def rss(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, child in self.live.items():
            if child.alive and child.proc is not None:
                try:
                    out[name] = psutil.Process(child.proc.pid).memory_info().rss / MB
                except psutil.Error:
                    continue
        return out

    def healthy(self, name: str) -> bool:
        try:
            url = f"http://127.0.0.1:{self.ports[name]}/healthz"
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
                return bool(resp.status == 200)
        except OSError:
            return False


def _ends(settings: StreamsenseSettings, topics: list[str]) -> dict[str, int]:
    """Records written so far to each topic (sum of its partitions' end offsets)."""
    c = Consumer({**settings.librdkafka_config(), "group.id": "bench-hostile-probe"})
    try:
        meta = c.list_topics(timeout=10).topics
        out = {}
        for t in topics:
            parts = meta[settings.topic(t)].partitions
            out[t] = sum(
                c.get_watermark_offsets(TopicPartition(settings.topic(t), p), timeout=10)[1]
                for p in parts
            )
        return out
    finally:
        c.close()


def _start(settings: StreamsenseSettings, work: Path, store: Path, tag: str) -> Children:
    env = {
        "STREAMSENSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "STREAMSENSE_REDIS_URL": settings.redis_url.get_secret_value(),
        "STREAMSENSE_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMSENSE_MODEL_STORE": str(store),
        "STREAMSENSE_REDIS_PREFIX": f"hostile{tag}",
        "STREAMSENSE_HOME": str(work / "home"),
    }
    children = Children(Supervisor(work / "logs", env))
    for task in TASK_NAMES:
        children.start(f"worker-{task}", "worker", task,
                       env={"STREAMSENSE_WORKER_GROUP": f"hostile-{task}-{tag}"})  # fmt: skip
    children.start("sink-redis", "sink", "redis",
                   env={"STREAMSENSE_SINK_GROUP": f"hostile-sink-{tag}"})  # fmt: skip
    children.start("producer-text", "produce", "text", "--path", str(work / "live.log"),
                   "--follow", "--source-id", "live.log")  # fmt: skip
    return children


def _phase(children: Children, load: Load, seconds: float, fraction: float,
           settings: StreamsenseSettings) -> dict[str, Any]:  # fmt: skip
    topics = [str(t) for t in (*results_topics(), *(dlq_topic(s.name) for s in TOPICS
                                                         if s.with_dlq))]  # fmt: skip
    before, sent_before = _ends(settings, topics), dict(load.sent)
    restarts_before = {n: len(r) for n, r in children.restarts.items()}
    samples: list[dict[str, float]] = []
    stop = threading.Event()
    sender = threading.Thread(target=load.run, args=(seconds, fraction, stop), daemon=True)
    sender.start()
    while sender.is_alive():
        children.check()
        samples.append(children.rss())
        sender.join(1.0)
    wait_until = time.monotonic() + 15  # let the services finish what was sent
    while time.monotonic() < wait_until:
        children.check()
        samples.append(children.rss())
        time.sleep(1.0)
    after = _ends(settings, topics)
    load_average = [round(x, 2) for x in os.getloadavg()]
    names = sorted({n for s in samples for n in s})
    return {
        "seconds": seconds,
        "load_average_at_end": load_average,
        "sent": {
            k: v - sent_before.get(k, 0) for k, v in load.sent.items() if v - sent_before.get(k, 0)
        },  # fmt: skip
        "written": {t: after[t] - before[t] for t in topics if after[t] - before[t]},
        "restarts": {n: len(children.restarts[n]) - restarts_before.get(n, 0) for n in names},
        "rss_mb": {
            n: {
                "peak": round(max(s[n] for s in samples if n in s), 1),
                "mean": round(sum(v := [s[n] for s in samples if n in s]) / len(v), 1),
            }
            for n in names
        },  # fmt: skip
    }


def run(  # noqa: PLR0913 - the run's parameters
    settings: StreamsenseSettings,
    seconds: float,
    *,
    rate: float = 200.0,
    poison_pct: float = 1.0,
    frame_share: float = 0.1,
    warmup_s: float = 60.0,
    only: list[str] | None = None,
    progress: Progress = print,
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    settings = settings.model_copy(update={"topic_prefix": f"hostile{tag}."})
    work = settings.home / "bench" / f"hostile-{tag}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "live.log").write_bytes(b"")
    store = work / "models"
    shutil.copytree(settings.model_store_dir, store)
    marker, sha = unsafe_version(ModelStore(store), work)
    load = Load(settings, rate, frame_share, work / "live.log", sha)
    if only:
        load.only(only)
    ensure_topics(settings)
    children = _start(settings, work, store, tag)
    result: dict[str, Any] = {
        "load": {
            "records_per_s": rate,
            "poison_pct": poison_pct,
            "frame_share": frame_share,
            "phase_s": seconds,
            "warmup_s": warmup_s,
            "cpus": os.cpu_count(),
            "hostile_classes": load.classes,
        },  # fmt: skip
        "logs": str(children.sup.log_dir),
    }
    try:
        progress(f"starting the services (logs in {children.sup.log_dir})")
        deadline = time.monotonic() + 300
        while not all(children.healthy(n) for n in JUDGED) and time.monotonic() < deadline:
            children.check()
            time.sleep(1.0)
        progress(f"warm-up: {warmup_s:.0f} s of clean load")
        load.run(warmup_s, 0.0, threading.Event())
        progress(f"clean phase: {seconds:.0f} s at {rate:g} records/s")
        result["clean"] = _phase(children, load, seconds, 0.0, settings)
        progress(f"poisoned phase: {seconds:.0f} s, {poison_pct:g}% hostile")
        result["poisoned"] = _phase(children, load, seconds, poison_pct / 100, settings)
    finally:
        load.close()
        result["exit_codes"] = children.sup.stop()
        drop_topics(settings)
        # the giant lines and the store copy are hundreds of MB; the logs stay
        (work / "live.log").unlink(missing_ok=True)
        shutil.rmtree(store, ignore_errors=True)
    result["unsafe_model_ran"] = marker.exists()
    result["verdict"] = _verdict(result)
    return result


def _verdict(result: dict[str, Any]) -> dict[str, Any]:
    clean, bad = result["clean"]["rss_mb"], result["poisoned"]["rss_mb"]
    per: dict[str, Any] = {}
    for name in JUDGED:
        ratio = bad[name]["peak"] / clean[name]["peak"] if name in bad and name in clean else None
        per[name] = {
            "restarts": result["clean"]["restarts"].get(name, 0)
            + result["poisoned"]["restarts"].get(name, 0),
            "peak_rss_ratio": ratio and round(ratio, 2),
        }
    ok = all(v["restarts"] == 0 and v["peak_rss_ratio"] is not None and v["peak_rss_ratio"] <= 2
             for v in per.values())  # fmt: skip
    return {"services": per, "no_restarts_and_rss_within_2x": ok and not result["unsafe_model_ran"]}
