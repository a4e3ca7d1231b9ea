"""The learner on the real broker against hostile labeled records and a store that fails.

Every record that is not a valid label for its model is dead-lettered with the reason and the
learner goes on learning the valid ones; a challenger that cannot be stored is never
announced, and health says so (false, with the reason) until a later one is stored.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import Topic
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.registry import decode, encode
from streamsense.schemas.text import LabeledText, TextEvent
from streamsense.services.kafka.producer import Producer
from streamsense.services.learner.app import build_learner
from streamsense.services.learner.settings import LearnerSettings
from streamsense.services.learner.updates import read_updates
from streamsense.services.runner import running
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all

pytestmark = [pytest.mark.integration, pytest.mark.models]

MODEL = "sentiment-tweets"
PHRASES = [("the flight was great", "positive"), ("lost my bag, awful", "negative"),
           ("boarding at noon", "neutral")]  # fmt: skip


def _valid(i: int) -> LabeledText:
    text, label = PHRASES[i % len(PHRASES)]
    return LabeledText(source_id="t", text=f"{text} {i}", label=label, model=MODEL,
                       ts_ns=time.time_ns())  # fmt: skip


def _hostile() -> list[tuple[bytes | None, str]]:
    """(record value, the error class its dead letter must name)."""
    good = _valid(0).to_json_dict()

    def mutated(**changes: object) -> bytes:
        return orjson.dumps({**good, **changes})

    event = TextEvent(source_id="t", text="x", ts_ns=1, seq=0, trace_id="t")
    return [
        (b"not json at all", "SchemaError"),
        (b"\xff\xfe\xfa\x00 not utf-8", "SchemaError"),
        (b"[1, 2, 3]", "SchemaError"),
        (encode(event), "SchemaError"),  # another schema on the labels topic
        (None, "SchemaError"),  # a tombstone
        (mutated(text=""), "SchemaError"),
        (mutated(text="x" * 70_000), "SchemaError"),
        (mutated(label="<script>alert(1)</script>"), "SchemaError"),
        (mutated(label="meh"), "UnknownLabelError"),
        (mutated(label=None), "SchemaError"),
        (mutated(model="../../etc"), "SchemaError"),
        (mutated(ts_ns=-1), "SchemaError"),
        (mutated(extra="field"), "SchemaError"),
    ]


def _settings(s: StreamsenseSettings, store: ModelStore, **extra: object) -> LearnerSettings:
    return LearnerSettings(
        learner_model=MODEL,
        service_name="t-hostile",
        kafka_bootstrap=s.kafka_bootstrap,
        topic_prefix=s.topic_prefix,
        model_store=store.root,
        **extra,  # type: ignore[arg-type]
    )


def _store(zoo_store: Path, tmp_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "store")  # a copy: the learner writes versions
    shutil.copytree(zoo_store / MODEL, store.root / MODEL)
    return store


def test_hostile_labels_are_dead_lettered_with_reasons_and_valid_ones_learned(
    zoo_store: Path, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    store = _store(zoo_store, tmp_path)
    hostile = _hostile()
    p = Producer(s)
    for i, (value, _) in enumerate(hostile):
        p.produce(s.topic(Topic.LABELS_TEXT), value, key="t")
        p.produce(s.topic(Topic.LABELS_TEXT), encode(_valid(i)), key="t")
    assert p.flush(30) == 0
    p.close()
    loop, handler = build_learner(_settings(s, store), follow_updates=False)
    with running(loop):
        wait_for(lambda: loop.processed >= 2 * len(hostile), 90, "every record consumed")
        dead = read_all(s.kafka_bootstrap, s.topic("labels.text.dlq"), len(hostile), 30)
        ok, detail = loop.health()
    assert len(dead) == len(hostile)
    for msg, (value, error_class) in zip(dead, hostile, strict=True):
        info = DeadLetterInfo.from_kafka_headers(msg.headers())
        assert info.error_class == error_class, (value, info)
        assert info.error_message and info.service == "t-hostile"
        assert msg.value() == value  # the original bytes, for a replay after a fix
    assert handler.learner.totals.labels == len(hostile)  # exactly the valid ones
    assert ok and detail["learner"]["problems"] == [], detail
    assert detail["dead_lettered"] == len(hostile)


def test_a_challenger_that_cannot_be_stored_is_not_announced_and_health_says_why(
    zoo_store: Path, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    store = _store(zoo_store, tmp_path)
    blocker = store.root / MODEL / "2"  # where the next version must go: the store fails
    blocker.write_text("not a version")
    eager = {"learner_min_samples": 10, "learner_check_every": 10, "learner_margin": 0.0,
             "learner_min_interval_s": 0.0, "learner_window": 10}  # fmt: skip
    loop, handler = build_learner(_settings(s, store, **eager), follow_updates=False)
    p = Producer(s)
    with running(loop):
        for i in range(12):
            p.produce(s.topic(Topic.LABELS_TEXT), encode(_valid(i)), key="t")
        assert p.flush(30) == 0
        wait_for(lambda: handler.state.store_failures >= 1, 90, "a failed store")
        ok, detail = loop.health()
        assert not ok
        [problem] = detail["learner"]["problems"]
        assert f"could not store the challenger that should replace {MODEL}@1" in problem
        assert problem in detail["problems"]  # the loop's list says why it is red
        assert store.champion(MODEL) == "1" and store.versions(MODEL) == ["1"]
        blocker.unlink()  # the store works again: the next check stores and announces
        for i in range(12, 24):
            p.produce(s.topic(Topic.LABELS_TEXT), encode(_valid(i)), key="t")
        assert p.flush(30) == 0
        wait_for(lambda: handler.state.promotions, 90, "a promotion once the store works")
        ok, detail = loop.health()
    p.close()
    assert ok and detail["learner"]["problems"] == [] and detail["learner"]["store_failures"] >= 1
    assert store.champion(MODEL) == "2"
    announced = read_updates(s, MODEL, timeout=10)
    assert [(mv.model_version, mv.stage) for mv in announced] == [("2", "champion")]
    assert decode(encode(announced[0]), ModelVersion).sha256 == store.card(MODEL, "2").sha256


def test_promote_refuses_a_version_that_emits_nan_and_the_champion_keeps_serving(
    zoo_store: Path, tmp_path: Path
) -> None:
    import keras
    import numpy as np

    from streamsense.models.card import ModelCard
    from streamsense.models.digest import artifact_sha256
    from streamsense.services.learner.exceptions import RolloutRejectedError
    from streamsense.services.learner.rollout import check_candidate

    store = _store(zoo_store, tmp_path)
    model = keras.saving.load_model(store.artifact_path(MODEL, "1"), compile=False)
    last = model.layers[-1]
    last.set_weights([np.full_like(w, np.nan) for w in last.get_weights()])
    path = tmp_path / "nan" / "model.keras"
    path.parent.mkdir()
    model.save(path)
    card = store.card(MODEL, "1").model_dump()
    card.update(version="2", sha256=artifact_sha256(path))
    store.put(MODEL, "2", path, ModelCard.model_validate(card))
    with pytest.raises(RolloutRejectedError, match="SignatureError: .* is not finite"):
        check_candidate(store, MODEL, "2")
    assert store.champion(MODEL) == "1"
