"""The learner, the rollout commands and a serving worker on the real broker."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamsense.models.digest import artifact_sha256
from streamsense.models.store import ModelStore
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.registry import decode, encode
from streamsense.schemas.text import LabeledText, TextEvent
from streamsense.services.bench.learning import ResultCollector, paced, swap_gaps
from streamsense.services.cli.app import app as cli
from streamsense.services.kafka.producer import Producer
from streamsense.services.learner.app import build_learner
from streamsense.services.learner.base import load_trainer
from streamsense.services.learner.keras_text import KerasTextTrainer
from streamsense.services.learner.settings import LearnerSettings
from streamsense.services.learner.updates import read_updates
from streamsense.services.runner import running
from streamsense.services.settings import StreamsenseSettings
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.settings import WorkerSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.learner.conftest import MODEL, Drift

pytestmark = [pytest.mark.integration, pytest.mark.models]
runner = CliRunner()


def _labels(s: StreamsenseSettings, texts: list[str], labels: list[str], model: str = MODEL):
    p = Producer(s)
    for text, label in zip(texts, labels, strict=True):
        ex = LabeledText(source_id="t", text=text, label=label, model=model, ts_ns=time.time_ns())
        p.produce(s.topic("labels.text"), encode(ex), key="t")
    assert p.flush(30) == 0


def _names(drift: Drift, a: int, b: int) -> list[str]:
    return [["negative", "neutral", "positive"][int(y)] for y in drift.stream.labels[a:b]]


def _worker(s: StreamsenseSettings, store: ModelStore, name: str) -> WorkerSettings:
    return WorkerSettings(
        task="sentiment",
        worker_model=MODEL,
        service_name=name,
        kafka_bootstrap=s.kafka_bootstrap,
        topic_prefix=s.topic_prefix,
        model_store=store.root,
    )


def _cli(s: StreamsenseSettings, store: ModelStore, *args: str) -> tuple[int, str]:
    env = {
        "STREAMSENSE_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "STREAMSENSE_TOPIC_PREFIX": s.topic_prefix,
        "STREAMSENSE_MODEL_STORE": str(store.root),
    }
    result = runner.invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_learner_beats_the_static_champion_on_a_drifted_stream_and_promotes(
    drift: Drift, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    store = drift.store(tmp_path)
    ds = drift.stream
    _labels(s, ds.texts, _names(drift, 0, len(ds.texts)))
    ls = LearnerSettings(
        learner_model=MODEL,
        service_name="t-learner",
        kafka_bootstrap=s.kafka_bootstrap,
        topic_prefix=s.topic_prefix,
        model_store=store.root,
    )
    loop, handler = build_learner(ls, keep_trace=True)
    with running(loop):
        wait_for(lambda: loop.processed >= len(ds.texts), 90, "every label learned")
    learner = handler.learner
    trace = np.array(learner.trace)
    a = ds.drift_at
    _, v1 = load_trainer(store, MODEL, "1", 1e-3)
    static = float((v1.predict(ds.texts[a:]).argmax(axis=1) == ds.labels[a:]).mean())
    online = float(trace[a:, 1].mean())
    assert online - static >= 0.05, (online, static)
    assert abs(float(trace[:a, 1].mean()) - float(trace[:a, 0].mean())) < 0.03  # no harm before
    assert learner.drift.detections >= 1
    # one promotion (min interval 30 s), written atomically with its sha and announced
    assert [p.version for p in handler.state.promotions] == ["2"]
    card = store.verify(MODEL, "2")
    assert store.champion(MODEL) == "2"
    assert card.sha256 == artifact_sha256(store.artifact_path(MODEL, "2"))
    assert card.metrics["prequential_accuracy"] - card.metrics["prequential_champion_accuracy"] >= (
        0.02
    )
    [msg] = read_all(s.kafka_bootstrap, s.topic("models.updates"), 1, 10)
    mv = decode(msg.value(), ModelVersion)
    assert msg.key() == MODEL.encode()
    assert (mv.model_version, mv.stage, mv.sha256) == ("2", "champion", card.sha256)
    assert "challenger" in (mv.reason or "")
    health = handler.state_report()
    replays = health["admission"]["skipped"].get("duplicate", 0)  # the corpus repeats tweets
    assert replays < len(ds.texts) // 20 and health["admission"]["skipped"].keys() <= {"duplicate"}
    assert health["labels"] + replays == len(ds.texts) and health["champion"] == "2"


def test_hot_swap_under_load_loses_nothing_and_names_every_version(
    drift: Drift, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    store = drift.store(tmp_path)
    ds = drift.stream
    # version 2: the champion fine-tuned on new-domain labels, stored beside it
    card, trainer = load_trainer(store, MODEL, "1", 1e-3)
    for i in range(0, 600, 32):
        trainer.train_step(ds.texts[400 + i : 432 + i], ds.labels[400 + i : 432 + i])
    art = trainer.save(tmp_path)
    store.put(
        MODEL, "2", art, card.model_copy(update={"version": "2", "sha256": artifact_sha256(art)})
    )
    loop, handler = build_worker(_worker(s, store, "t-swap-worker"))
    producer = Producer(s)
    stop = threading.Event()
    sent = [0]

    def send(i: int) -> bool:
        ev = TextEvent(
            source_id="t", text=ds.texts[i % 800], ts_ns=time.time_ns(), seq=i, trace_id="x"
        )
        producer.produce(s.topic("text"), encode(ev), key=f"k{i % 5}")
        producer.poll(0)
        sent[0] += 1
        return True

    collector = ResultCollector(s)
    try:
        with running(loop):
            feeder = paced(150, stop, send)
            wait_for(lambda: len(collector.results) >= 150, 60, "results from version 1")
            code, out = _cli(s, store, "models", "promote", MODEL, "2", "--recent-labels", "0")
            assert code == 0, out
            wait_for(lambda: "2" in collector.versions(), 60, "results from version 2")
            n = len(collector.results)
            wait_for(lambda: len(collector.results) >= n + 150, 60, "more results after the swap")
            stop.set()
            feeder.join(10)
            assert producer.flush(30) == 0
            wait_for(lambda: len(collector.results) >= sent[0], 60, "a result for every text")
    finally:
        collector.close()
    results = collector.results
    refs = [r.ref for r in results]
    assert len(set(refs)) == sent[0] == len(refs)  # none lost, none twice
    assert collector.versions() == {"1", "2"}
    # per partition, in offset order: version 1, then version 2, never back
    for part in {p for p, _ in refs}:
        seq = [r.version for r in sorted(results, key=lambda r: r.ref) if r.ref[0] == part]
        assert seq == sorted(seq), part
    near, steady = swap_gaps(results, "2")
    print(
        f"swap gap {near:.1f} ms (steady max {steady:.1f} ms), pointer swap "
        f"{handler.slot.last_swap_gap_ms:.3f} ms, {len(results)} results"
    )
    # How long serving pauses around the swap is a speed figure: `bench learning` measures it
    # (swap_gap_ms, docs/online-learning.md). A bound here failed CI on a slow machine (1,110 ms
    # against 91-119 ms measured on a quiet one) while nothing was lost or reordered.


def test_corrupt_and_worse_versions_are_rejected_and_rollback_restores(
    drift: Drift, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    store = drift.store(tmp_path)
    ds = drift.stream
    recent = slice(ds.drift_at, ds.drift_at + 300)
    _labels(s, ds.texts[recent], _names(drift, recent.start, recent.stop))
    card, v1 = load_trainer(store, MODEL, "1", 1e-2)

    def put(version: str, trainer: KerasTextTrainer) -> Path:
        d = tmp_path / version
        d.mkdir()
        art = trainer.save(d)
        store.put(
            MODEL,
            version,
            art,
            card.model_copy(update={"version": version, "sha256": artifact_sha256(art)}),
        )
        return store.artifact_path(MODEL, version)

    worse = v1.clone()  # learns rotated labels: confidently wrong
    for i in range(0, 300, 30):
        worse.train_step(ds.texts[recent][i : i + 30], (ds.labels[recent][i : i + 30] + 1) % 3)
    put("2", worse)
    better = v1.clone()
    for _ in range(3):
        for i in range(0, 300, 30):
            better.train_step(ds.texts[recent][i : i + 30], ds.labels[recent][i : i + 30])
    corrupt = put("3", better)
    corrupt.write_bytes(corrupt.read_bytes()[:-10] + b"0123456789")
    put("4", better)

    loop, _ = build_worker(_worker(s, store, "t-rollout-worker"))
    producer = Producer(s)
    sent = [0]

    def serve(k: int) -> set[str]:
        """Send k texts; the versions that served them."""
        start = sent[0]
        for i in range(start, start + k):
            ev = TextEvent(
                source_id="t", text=ds.texts[500], ts_ns=time.time_ns(), seq=i, trace_id="x"
            )
            producer.produce(s.topic("text"), encode(ev), key="t")
        sent[0] += k
        assert producer.flush(10) == 0
        wait_for(lambda: len(collector.results) >= sent[0], 30, "results")
        return {r.version for r in collector.results if r.seq >= start}

    collector = ResultCollector(s)
    try:
        with running(loop):
            assert serve(5) == {"1"}
            code, out = _cli(s, store, "models", "promote", MODEL, "3")
            assert code == 1 and "sha256" in out and "rejected" in out, out
            code, out = _cli(s, store, "models", "promote", MODEL, "2")
            assert code == 1 and "worse than champion 1" in out and "300 most recent" in out, out
            assert store.champion(MODEL) == "1"
            assert serve(5) == {"1"}  # the champion keeps serving
            code, out = _cli(s, store, "models", "promote", MODEL, "4")
            assert code == 0, out
            wait_for(lambda: serve(3) == {"4"}, 60, "version 4 serving")
            code, out = _cli(s, store, "models", "rollback", MODEL)
            assert code == 0 and "rollback from 4" in out, out
            assert store.champion(MODEL) == "1"
            wait_for(lambda: serve(3) == {"1"}, 60, "version 1 serving again")
    finally:
        collector.close()
    history = read_updates(s, MODEL)
    stages = [(mv.model_version, mv.stage) for mv in history]
    assert stages == [("3", "rejected"), ("2", "rejected"), ("4", "champion"), ("1", "champion")]
    assert "ModelIntegrityError" in (history[0].reason or "") and "sha256" in (
        history[0].reason or ""
    )
    assert "worse than champion" in (history[1].reason or "")
    code, out = _cli(s, store, "models", "history", MODEL)
    assert code == 0 and out.count("rejected") >= 2 and "rollback from 4" in out, out


def test_feedback_reaches_the_default_learner_and_unknown_labels_are_dead_lettered(
    zoo_store: Path, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    store = ModelStore(tmp_path / "store")  # a copy: the learner may write versions
    shutil.copytree(zoo_store / "sentiment-tweets", store.root / "sentiment-tweets")
    for label in ("positive", "meh"):
        code, out = _cli(
            s,
            store,
            "feedback",
            "--text",
            "what a lovely flight",
            "--label",
            label,
            "--source-id",
            "app",
        )
        assert code == 0, out
    code, out = _cli(s, store, "feedback", "--text", "", "--label", "positive")
    assert code == 1 and "text" in out
    _labels(s, ["for another model"], ["positive"], model="other-model")
    loop, handler = build_learner(  # default settings: the zoo's sentiment-tweets
        LearnerSettings(
            service_name="t-feedback",
            kafka_bootstrap=s.kafka_bootstrap,
            topic_prefix=s.topic_prefix,
            model_store=store.root,
        )
    )
    with running(loop):
        wait_for(lambda: loop.processed >= 3, 60, "three labels consumed")
        dead = read_all(s.kafka_bootstrap, s.topic("labels.text.dlq"), 1, 30)
    assert handler.name == "sentiment-tweets"
    assert handler.learner.totals.labels == 1 and handler.state.skipped == 1
    info = DeadLetterInfo.from_kafka_headers(dead[0].headers())
    assert info.error_class == "UnknownLabelError" and "'meh'" in info.error_message
