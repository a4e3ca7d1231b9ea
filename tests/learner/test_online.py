"""The learner's pure parts: replay, paired windows, drift, policy, bounded training, rollback
choice. No Kafka, no TensorFlow."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from streamsense.models.card import InputSpec, ModelCard, Source
from streamsense.models.store import ModelStore
from streamsense.schemas.model_updates import ModelVersion
from streamsense.services.learner.base import TrainingAdapter
from streamsense.services.learner.exceptions import LearnerError, UnknownLabelError
from streamsense.services.learner.online import CheckConfig, OnlineLearner, TrainingConfig
from streamsense.services.learner.policy import PromotionPolicy, decide
from streamsense.services.learner.prequential import DriftMonitor, PairedWindow, WindowStats
from streamsense.services.learner.replay import ReplayBuffer
from streamsense.services.learner.rollout import previous_champion

LABELS = ["negative", "neutral", "positive"]


class KeywordTrainer(TrainingAdapter[str]):
    """Predicts by a word -> class table; a train step stores the examples' words."""

    def __init__(self, table: dict[str, int] | None = None, default: int = 0) -> None:
        super().__init__(LABELS)
        self.table = dict(table or {})
        self.default = default
        self.steps: list[int] = []

    @classmethod
    def from_artifact(cls, card: ModelCard, artifact: Path, learning_rate: float) -> KeywordTrainer:
        return cls()

    def predict(self, inputs: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(inputs), len(LABELS)))
        for i, text in enumerate(inputs):
            out[i, self.table.get(text.split()[0], self.default)] = 1
        return out

    def train_step(self, inputs: Sequence[str], y: np.ndarray) -> float:
        self.steps.append(len(inputs))
        for text, label in zip(inputs, y, strict=True):
            self.table[text.split()[0]] = int(label)
        return 0.0

    def clone(self) -> KeywordTrainer:
        return KeywordTrainer(self.table, self.default)

    def save(self, directory: Path) -> Path:
        path = directory / "table.json"
        path.write_text(repr(self.table))
        return path


def test_replay_buffer_is_bounded_and_samples_without_replacement() -> None:
    buf: ReplayBuffer[str] = ReplayBuffer(100, seed=1)
    buf.add([f"t{i}" for i in range(1000)], [i % 3 for i in range(1000)])
    assert len(buf) == 100 and buf.seen == 1000
    xs, ys = buf.sample(50)
    assert len(set(xs)) == 50 and all(y == int(x[1:]) % 3 for x, y in zip(xs, ys, strict=True))
    # reservoir sampling keeps early and late labels alike (not only the most recent)
    ids = [int(x[1:]) for x in buf.sample(100)[0]]
    assert min(ids) < 300 and max(ids) > 700


def test_paired_window_scores_both_models_on_the_same_labels() -> None:
    w = PairedWindow(4)
    for champ, chall in [(True, True), (False, True), (False, False), (True, True), (False, True)]:
        w.record(champ, chall)
    assert w.stats() == WindowStats(4, 0.25, 0.75)
    assert w.stats(last=2) == WindowStats(2, 0.5, 1.0)
    assert w.total == 5


def test_adwin_flags_a_jump_in_the_error_rate_but_not_a_stationary_stream() -> None:
    rng = np.random.default_rng(3)
    quiet = DriftMonitor()
    assert not any(quiet.update(bool(e)) for e in rng.random(3000) < 0.25)
    monitor = DriftMonitor()
    for e in rng.random(1000) < 0.25:
        monitor.update(bool(e))
    assert monitor.detections == 0
    hits = [i for i, e in enumerate(rng.random(1000) < 0.65) if monitor.update(bool(e))]
    assert hits and hits[0] < 200, hits
    assert monitor.since_drift is not None and monitor.error_rate > 0.5


@pytest.mark.parametrize(
    ("stats", "last", "now", "promote", "why"),
    [
        (WindowStats(150, 0.5, 0.9), None, 100.0, False, "150 paired labels < 200"),
        (WindowStats(300, 0.70, 0.71), None, 100.0, False, "below the 0.020 margin"),
        (WindowStats(300, 0.70, 0.75), 90.0, 100.0, False, "allowed in 20 s"),
        (WindowStats(300, 0.70, 0.75), 60.0, 100.0, True, "challenger 0.750 vs champion 0.700"),
        (WindowStats(200, 0.40, 0.42), None, 0.0, True, "on the same 200 recent labels"),
    ],
)
def test_promotion_needs_samples_margin_and_time(
    stats: WindowStats, last: float | None, now: float, promote: bool, why: str
) -> None:
    d = decide(PromotionPolicy(margin=0.02, min_samples=200, min_interval_s=30), stats, now, last)
    assert d.promote is promote
    assert why in d.reason


def test_unknown_labels_are_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownLabelError, match=r"'meh'.*negative"):
        KeywordTrainer().encode_labels(["positive", "meh"])
    assert KeywordTrainer().encode_labels(["positive", "negative"]).tolist() == [2, 0]


def _learner(**kw: object) -> OnlineLearner:
    return OnlineLearner(
        "m",
        KeywordTrainer(default=0),
        "1",
        training=TrainingConfig(step_size=8, replay_fraction=0.5, max_steps=3),
        checks=CheckConfig(window=300, check_every=100),
        policy=PromotionPolicy(margin=0.02, min_samples=50, min_interval_s=0),
        **kw,  # type: ignore[arg-type]
    )


def test_training_is_bounded_per_batch_and_mixes_in_replay() -> None:
    learner = _learner()
    texts = [f"w{i} x" for i in range(64)]
    learner.observe(texts, np.full(64, 1))
    chall = learner.challenger
    assert isinstance(chall, KeywordTrainer)
    assert chall.steps == [22, 22, 20]  # max_steps=3: the batch is spread over 3 steps
    assert len(learner.replay) == 64
    learner.observe(["a x", "b x"], np.array([2, 2]))
    assert chall.steps[-1] == 8  # 2 fresh + 6 replayed
    assert isinstance(learner.champion, KeywordTrainer) and learner.champion.steps == []


def test_prequential_scoring_then_drift_triggers_checks_and_promotion() -> None:
    learner = _learner(keep_trace=True)
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(20)]
    # before the drift every label is "negative" (class 0): the champion is always right
    for _ in range(10):
        learner.observe([f"{w} x" for w in rng.choice(words, 32)], np.zeros(32, dtype=int))
        d = learner.check()
        assert d is None or not d.promote
    assert learner.drift.detections == 0
    # after it each word has its own class: the champion keeps answering 0, the challenger
    # learns the table; each label is scored before it is learned
    table = {w: int(rng.integers(0, 3)) for w in words}
    promoted = None
    for _ in range(20):
        batch = list(rng.choice(words, 32))
        learner.observe([f"{w} x" for w in batch], np.array([table[w] for w in batch]))
        d = learner.check()
        if d is not None and d.promote:
            promoted = d
            break
    assert learner.drift.detections >= 1
    assert promoted is not None and promoted.stats.gain >= 0.02, learner.last_decision
    assert learner.trace is not None and learner.trace[0] == (True, True)
    learner.promoted("2", now=1.0)
    assert learner.champion_version == "2" and len(learner.window) == 0
    assert learner.champion is not learner.challenger
    assert learner.champion.predict(["w1 x"]).argmax() == table["w1"]


def _put(store: ModelStore, version: str, payload: bytes, tmp: Path) -> None:
    path = tmp / f"a{version}.keras"
    path.write_bytes(payload)
    card = ModelCard(
        name="m",
        version=version,
        task="sentiment",
        adapter="keras_text",
        format="keras",
        artifact="model.keras",
        sha256=hashlib.sha256(payload).hexdigest(),
        licence="test",
        source=Source(kind="user"),
        input=InputSpec(kind="text", shape=[None], dtype="string"),
        labels=LABELS,
    )
    store.put("m", version, path, card)


def _mv(version: str, stage: str) -> ModelVersion:
    return ModelVersion(
        name="m",
        model_version=version,
        task="sentiment",
        uri="file:///x",
        sha256="0" * 64,
        stage=stage,  # type: ignore[arg-type]
        created_ns=1,
    )


def test_rollback_goes_to_the_champion_announced_before_skipping_broken_ones(
    tmp_path: Path,
) -> None:
    store = ModelStore(tmp_path / "store")
    for v in "1234":
        _put(store, v, f"artifact {v}".encode(), tmp_path)
    store.set_champion("m", "4")
    history = [_mv("1", "champion"), _mv("2", "champion"), _mv("3", "champion")]
    history += [_mv("4", "champion")]
    assert previous_champion(store, "m", history) == "3"
    # 3 was rejected by the workers and 2 is corrupt on disk: back to 1
    (store.version_dir("m", "2") / "model.keras").write_bytes(b"tampered")
    history.insert(3, _mv("3", "rejected"))
    assert previous_champion(store, "m", history) == "1"
    # no announcements at all: the store's previous intact version
    assert previous_champion(store, "m", []) == "3"
    store.set_champion("m", "1")
    with pytest.raises(LearnerError, match="no earlier intact version"):
        previous_champion(store, "m", [])
