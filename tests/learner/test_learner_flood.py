"""The learner on the real broker against one source that floods ``labels.text`` and against
the other ways a label producer can try to steer it (replays, unknown sources, blank texts).

A flooding source no longer pushes another source's labels out: every honest label is learned
and kept for replay, the flood learns no more than an equal split, and the rest of the flood is
skipped (counted per reason, named in health, committed, not dead-lettered). Without the bound
(share 1.0) the same flood is learned in full and pushes the honest source out of the buffer.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import Topic
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import encode
from streamsense.schemas.text import LabeledText
from streamsense.services.kafka.producer import Producer
from streamsense.services.learner.app import build_learner
from streamsense.services.learner.settings import LearnerSettings
from streamsense.services.runner import running
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.kafka_helpers import committed_offset, read_all

pytestmark = [pytest.mark.integration, pytest.mark.models]

MODEL = "sentiment-tweets"
PHRASES = [("the flight was great", "positive"), ("lost my bag, awful", "negative"),
           ("boarding at noon", "neutral")]  # fmt: skip
HONEST, FLOOD_PER_HONEST, ROUNDS = "honest", 15, 40
QUIET = {"learner_min_samples": 100_000, "learner_replay_capacity": 200,
         "learner_source_window_s": 600.0}  # fmt: skip


def _label(source: str, i: int, text: str | None = None, label: str | None = None) -> LabeledText:
    phrase, name = PHRASES[i % len(PHRASES)]
    return LabeledText(source_id=source, text=text if text is not None else f"{phrase} {i}",
                       label=label or name, model=MODEL, ts_ns=time.time_ns())  # fmt: skip


def _settings(s: StreamsenseSettings, store: ModelStore, **extra: object) -> LearnerSettings:
    return LearnerSettings(
        learner_model=MODEL,
        service_name="t-flood",
        kafka_bootstrap=s.kafka_bootstrap,
        topic_prefix=s.topic_prefix,
        model_store=store.root,
        **{**QUIET, "learner_source_max_share": 0.25, **extra},  # type: ignore[arg-type]
    )


def _store(zoo_store: Path, tmp_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "store")  # a copy: the learner may write versions
    shutil.copytree(zoo_store / MODEL, store.root / MODEL)
    return store


def _produce(s: StreamsenseSettings, labels: list[LabeledText]) -> None:
    p = Producer(s)
    for ex in labels:
        p.produce(s.topic(Topic.LABELS_TEXT), encode(ex), key=ex.source_id)
    assert p.flush(30) == 0
    p.close()


def _committed(s: LearnerSettings) -> int:
    return committed_offset(s.kafka_bootstrap, s.group_id, s.labels_topic)


def _flood() -> list[LabeledText]:
    """Each honest label followed by FLOOD_PER_HONEST from the flooding source, interleaved
    as they would arrive from two producers at very different rates."""
    out = []
    for r in range(ROUNDS):
        out.append(_label(HONEST, r, f"honest review number {r}"))
        out += [_label("flood", r * FLOOD_PER_HONEST + j) for j in range(FLOOD_PER_HONEST)]
    return out


def _run(s: StreamsenseSettings, store: ModelStore, **extra: object) -> tuple[dict, dict, int]:
    sent = _flood()
    _produce(s, sent)
    settings = _settings(s, store, **extra)
    loop, handler = build_learner(settings, follow_updates=False)
    with running(loop):
        wait_for(lambda: loop.processed >= len(sent), 120, "every label consumed")
        ok, detail = loop.health()
    assert ok, detail
    held = handler.learner.replay.held()
    assert handler.learner.totals.labels == sum(
        detail["learner"]["admission"]["learned_per_source"].values()
    )
    assert not read_all(s.kafka_bootstrap, s.topic("labels.text.dlq"), 1, 3)  # nothing poison
    assert _committed(settings) == len(sent)  # skipped labels are committed, not left behind
    return detail["learner"]["admission"], held, handler.learner.totals.labels


def test_a_flooding_source_no_longer_pushes_out_another_sources_labels(
    zoo_store: Path, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    skipped_before = (
        REGISTRY.get_sample_value(
            "streamsense_learner_skipped_labels_total",
            {"service": "t-flood", "model": MODEL, "reason": "source_share"},
        )
        or 0.0
    )
    admission, held, learned = _run(s, _store(zoo_store, tmp_path))
    per_source = admission["learned_per_source"]
    assert per_source[HONEST] == ROUNDS  # every honest label learned ...
    assert held[HONEST] == ROUNDS  # ... and kept for replay
    flood_sent = ROUNDS * FLOOD_PER_HONEST
    assert per_source["flood"] <= ROUNDS + 1  # two sources: no more than an equal split
    assert learned == ROUNDS + per_source["flood"]
    over = flood_sent - per_source["flood"]
    assert admission["skipped"] == {"source_share": over}
    assert admission["over_share_sources"] == {"flood": over}  # named in health
    skipped_after = REGISTRY.get_sample_value(
        "streamsense_learner_skipped_labels_total",
        {"service": "t-flood", "model": MODEL, "reason": "source_share"},
    )
    assert skipped_after == skipped_before + over


def test_without_the_bound_the_same_flood_dominates_and_pushes_the_honest_source_out(
    zoo_store: Path, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    admission, held, learned = _run(
        s, _store(zoo_store, tmp_path), learner_source_max_share=1.0, learner_dedup_window=0
    )
    assert learned == ROUNDS * (1 + FLOOD_PER_HONEST)  # the flood was learned in full
    assert admission["skipped"] == {}
    assert held.get(HONEST, 0) < ROUNDS // 2  # most honest labels pushed out of the buffer


def test_replays_unknown_sources_blank_and_maximal_texts_each_get_a_clear_outcome(
    zoo_store: Path, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    store = _store(zoo_store, tmp_path)
    dead = [  # (label, the error class its dead letter must name)
        (_label("stranger", 0), "UnknownSourceError"),
        (_label(HONEST, 1, text=" \t \u3000 "), "BlankTextError"),
        (_label(HONEST, 2, label="meh"), "UnknownLabelError"),
    ]
    replay = [_label(HONEST, 3, text="the same review, sent again and again")] * 30
    replay += [_label(HONEST, 3, text="The same review,  sent again and AGAIN")] * 5
    agree = [_label("ops", 3, text="the same review, sent again and again")]  # another source
    maximal = [_label("ops", 4, text=("word " * 13_108)[:65_536])]  # the largest valid text
    _produce(s, [ex for ex, _ in dead] + replay + agree + maximal)
    settings = _settings(s, store, learner_sources=(HONEST, "ops"))
    loop, handler = build_learner(settings, follow_updates=False)
    total = len(dead) + len(replay) + len(agree) + len(maximal)
    with running(loop):
        wait_for(lambda: loop.processed >= total, 120, "every label consumed")
        ok, detail = loop.health()
        letters = read_all(s.kafka_bootstrap, s.topic("labels.text.dlq"), len(dead), 30)
    assert ok, detail
    assert [DeadLetterInfo.from_kafka_headers(m.headers()).error_class for m in letters] == [
        cls for _, cls in dead
    ]
    info = DeadLetterInfo.from_kafka_headers(letters[0].headers())
    assert "'stranger'" in (info.error_message or "") and "STREAMSENSE_LEARNER_SOURCES" in (
        info.error_message or ""
    )
    assert handler.learner.totals.labels == 3  # the replayed review once per source, the maximal
    admission = detail["learner"]["admission"]
    assert admission["skipped"] == {"duplicate": len(replay) - 1}
    assert _committed(settings) == total


def test_a_round_whose_training_fails_is_retried_and_each_label_learned_once(
    zoo_store: Path, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    sent = [_label(f"s{i % 3}", i) for i in range(24)]
    _produce(s, sent)
    loop, handler = build_learner(_settings(s, _store(zoo_store, tmp_path)), follow_updates=False)
    challenger = handler.learner.challenger
    real, failed = challenger.train_step, []

    def fails_once(inputs: object, y: object) -> float:
        if not failed:
            failed.append(True)
            msg = "injected: the first training step fails"
            raise RuntimeError(msg)
        return real(inputs, y)  # type: ignore[arg-type]

    challenger.train_step = fails_once  # type: ignore[method-assign]
    with running(loop):
        wait_for(lambda: loop.processed >= len(sent), 120, "every label consumed")
        ok, detail = loop.health()
    assert failed and ok, detail
    assert handler.learner.totals.labels == len(sent)  # once each: not twice, not skipped
    assert detail["learner"]["admission"]["skipped"] == {}
    assert detail["learner"]["window"]["n"] == len(sent)
    assert not read_all(s.kafka_bootstrap, s.topic("labels.text.dlq"), 1, 3)
