"""The learner over rounds that are not committed: it learns each label once and announces each
version once, in-process and across a restart.

``models.updates`` first refuses records (``max.message.bytes`` below an announcement), so the
round holding the learner's first announcement is aborted and read again, over and over: the
labels read again must not be learned again, and each attempt must carry the announcement.
Stopping that learner leaves what a crash between the store write and the commit leaves: the
new version stored and champion, its announcement and the labels' offsets not committed. Once
the topic takes records again, a learner started from the store must announce that version,
once, without learning again the labels it holds, and a learner started after that commit must
not announce it again.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import Topic
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.registry import decode, encode
from streamsense.schemas.text import LabeledText
from streamsense.services.kafka.producer import Producer
from streamsense.services.learner.app import build_learner
from streamsense.services.learner.settings import LearnerSettings
from streamsense.services.learner.updates import read_updates
from streamsense.services.runner import running
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.integration.test_exactly_once import read_committed
from tests.kafka_helpers import committed_offset

pytestmark = [pytest.mark.integration, pytest.mark.models]

MODEL = "sentiment-tweets"
PHRASES = [("the flight was great", "positive"), ("lost my bag, awful", "negative"),
           ("boarding at noon", "neutral")]  # fmt: skip


def _labels(s: StreamsenseSettings, start: int, n: int) -> None:
    p = Producer(s)
    for i in range(start, start + n):
        text, label = PHRASES[i % len(PHRASES)]
        ex = LabeledText(source_id="t", text=f"{text} {i}", label=label, model=MODEL,
                         ts_ns=time.time_ns())  # fmt: skip
        p.produce(s.topic(Topic.LABELS_TEXT), encode(ex), key="t")
    assert p.flush(30) == 0
    p.close()


def _max_message_bytes(s: StreamsenseSettings, topic: str, value: int) -> None:
    op = AlterConfigOpType.SET
    entry = ConfigEntry("max.message.bytes", str(value), incremental_operation=op)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    admin.incremental_alter_configs([resource])[resource].result()


def _committed(s: LearnerSettings) -> int:
    return committed_offset(s.kafka_bootstrap, s.group_id, s.labels_topic)


def test_rounds_read_again_learn_once_and_announce_once_across_a_restart(
    zoo_store: Path, prefixed: Callable[[], StreamsenseSettings], tmp_path: Path
) -> None:
    s = prefixed()
    store = ModelStore(tmp_path / "store")
    shutil.copytree(zoo_store / MODEL, store.root / MODEL)
    updates = s.topic(Topic.MODEL_UPDATES)
    _max_message_bytes(s, updates, 100)  # an announcement is ~700 B: refused
    _labels(s, 0, 60)

    def learner(**policy: float) -> LearnerSettings:
        return LearnerSettings(
            kafka_bootstrap=s.kafka_bootstrap,
            topic_prefix=s.topic_prefix,
            model_store=store.root,
            service_name="t-rounds",
            delivery="exactly-once",
            learner_model=MODEL,
            learner_margin=0.0,
            learner_min_interval_s=0.0,
            **policy,  # type: ignore[arg-type]
        )

    # one promotion (60 labels, a check every 50), whose rounds are aborted again and again
    ls = learner(learner_min_samples=50, learner_check_every=50)
    loop, handler = build_learner(ls)
    with running(loop):
        wait_for(lambda: loop.health()[1]["aborted"] >= 3, 60, "rounds aborted and read again")
    assert [p.version for p in handler.state.promotions] == ["2"]
    assert handler.learner.totals.labels == 60, "a label read again was learned again"
    assert handler.state.reread >= 60 and handler.state.reannounced >= 2
    card = store.verify(MODEL, "2")
    carrier = card.source.learned_until  # the last label version 2 learned
    assert store.champion(MODEL) == "2" and carrier is not None
    assert carrier.topic == ls.labels_topic and 49 <= carrier.offset <= 59, carrier
    assert read_committed(s.kafka_bootstrap, updates, settle_s=0.5) == []
    assert _committed(ls) <= 0  # as a crash before the commit leaves it

    # started again with the topic fixed: version 2 announced once, with the labels' offsets
    _max_message_bytes(s, updates, 1_048_576)
    quiet = learner(learner_min_samples=10_000)  # learns, never promotes
    # the labels up to the carrier are in version 2 already: read again, not learned again
    for run, total, learned in ((1, 60, 59 - carrier.offset), (2, 65, 5)):
        if run == 2:
            _labels(s, 60, 5)
        loop, handler = build_learner(quiet)
        with running(loop):
            wait_for(lambda t=total: _committed(quiet) == t, 60, f"{total} labels committed")
        assert handler.state.reannounced == (1 if run == 1 else 0)
        assert handler.learner.totals.labels == learned
    t0 = time.monotonic()
    history = read_updates(s, MODEL)
    read_s = time.monotonic() - t0
    [mv] = [decode(v, ModelVersion) for v in read_committed(s.kafka_bootstrap, updates, 0.5)]
    assert (mv.model_version, mv.stage, mv.sha256) == ("2", "champion", card.sha256)
    assert [m.model_version for m in history] == ["2"]
    assert read_s < 5, f"reading the history took {read_s:.1f} s"
    assert store.versions(MODEL) == ["1", "2"] and store.champion(MODEL) == "2"
