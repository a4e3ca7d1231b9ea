"""The online learner keeps its guarantees on a three-broker cluster through broker kill -9s.

What the learner guarantees (``services/learner/handler.py``, ``publish.py``; the loop's
exactly-once delivery in ``services/kafka/delivery.py``): a promoted challenger is written to
the model store atomically as the next version (``ModelStore.put`` checks the card's sha256
against the artifact and renames the finished directory into place) and made champion, then
its ``ModelVersion`` is an output of the batch whose labels triggered it: with exactly-once
delivery the announcement on ``models.updates`` and the labels' offsets are one Kafka
transaction, so a ``read_committed`` reader sees the announcement exactly when the labels up to
it are committed. A round that is not committed is read again; the learner then learns none of
its labels twice and sends its announcement again. Hence, after any failure of a broker:
every announced version exists in the store and its artifact matches the announced sha256; no
version is announced twice; every version the learner promoted is announced, and the champion
pointer names the last one; every label's offset is committed (none skipped) and every label
was learned exactly once.

The test: labels at 100/s on ``labels.text`` (RF 3, ``min.insync.replicas=2``) and a learner in
exactly-once mode (default Kafka settings, 10 s transaction timeout) whose policy promotes
about every 100 labels (margin 0, 100 paired labels, 1 s apart). Once it has promoted, kill -9
the node leading ``labels.text[0]``, keep it down until the learner has committed without it,
start it again; then kill -9 the node leading ``models.updates[0]`` right after a promotion
(its transaction is then likely open) and do the same. Two more promotions, stop feeding, and
check the guarantees on what was committed.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from streamsense.models.digest import artifact_sha256
from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import Topic
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.registry import decode, encode
from streamsense.schemas.text import LabeledText
from streamsense.services.bench.learning import paced
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import TOPICS, ensure_topics
from streamsense.services.learner.app import build_learner
from streamsense.services.learner.settings import LearnerSettings
from streamsense.services.local.cluster import KafkaCluster
from streamsense.services.local.kafka import ensure_jars
from streamsense.services.runner import running
from streamsense.services.settings import default_home
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.slow]

MODEL = "sentiment-tweets"
RATE = 100  # labels per second
PHRASES = [
    ("the flight was great, thank you", "positive"),
    ("lost my bag again, awful service", "negative"),
    ("boarding at gate 12 at noon", "neutral"),
    ("love the new seats", "positive"),
    ("delayed for five hours, terrible", "negative"),
]


@dataclass
class Commits:
    """The learner's transactions, sampled from its loop every 20 ms: when they committed, and
    how many committed and aborted under each producer (the loop replaces a fenced one)."""

    loop: BatchLoop[object]
    times: list[float] = field(default_factory=list)
    per_producer: dict[object, tuple[int, int]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        delivery = self.loop.delivery
        state = delivery.state()
        now = (int(state.get("transactions", 0)), int(state.get("aborted", 0)))
        if now[0] > self.per_producer.get(delivery, (0, 0))[0]:
            self.times.append(time.time())
        self.per_producer[delivery] = now

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.sample()

    def after(self, t: float) -> float | None:
        return next((c for c in self.times if c > t), None)

    def totals(self) -> str:
        committed = sum(c for c, _ in self.per_producer.values())
        aborted = sum(a for _, a in self.per_producer.values())
        return (f"{committed} transactions committed, {aborted} aborted, producer replaced "
                f"{len(self.per_producer) - 1} times")  # fmt: skip


def _committed_records(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Message]:
    """Every record of ``topic[0]`` a ``read_committed`` reader sees, up to the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        tp = TopicPartition(topic, 0, 0)
        consumer.assign([tp])
        _, high = consumer.get_watermark_offsets(tp, timeout=10)
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        # the position passes control records too, so it reaches ``high`` once all is read
        while consumer.position([tp])[0].offset < high and time.monotonic() < deadline:
            out += [m for m in consumer.consume(500, 0.2) if m.error() is None]
        return out
    finally:
        consumer.close()


def _group_offset(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


def test_learner_keeps_its_guarantees_through_broker_kill_9s(
    cluster: KafkaCluster, zoo_store: Path, tmp_path: Path
) -> None:
    store = ModelStore(tmp_path / "store")  # a copy: the learner writes versions
    shutil.copytree(zoo_store / MODEL, store.root / MODEL)
    settings = LearnerSettings(
        kafka_bootstrap=cluster.bootstrap,
        topic_prefix=f"lc{uuid.uuid4().hex[:6]}.",
        model_store=store.root,
        home=tmp_path,
        service_name="t-learner-cluster",
        delivery="exactly-once",
        learner_model=MODEL,
        learner_margin=0.0,
        learner_min_samples=100,
        learner_check_every=100,
        learner_window=100,
        learner_min_interval_s=1.0,
    )
    wanted = {Topic.LABELS_TEXT, Topic.MODEL_UPDATES}
    ensure_topics(settings, [s for s in TOPICS if s.name in wanted])
    labels_topic, updates_topic = settings.labels_topic, settings.updates_topic
    libs = ensure_jars(default_home())
    loop, handler = build_learner(settings)
    assert loop.exactly_once and loop.producer.transactional_id is not None

    producer = Producer(settings)
    acked, failed = [0], [0]

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            acked[0] += 1
        else:
            failed[0] += 1

    def send(i: int) -> bool:
        text, label = PHRASES[i % len(PHRASES)]
        ex = LabeledText(source_id=f"s{i % 7}", text=f"{text} #{i}", label=label, model=MODEL,
                         ts_ns=time.time_ns())  # fmt: skip
        producer.produce(labels_topic, encode(ex), key=ex.source_id, on_delivery=on_delivery)
        producer.poll(0)
        return True

    def promoted() -> int:
        return len(handler.state.promotions)

    commits = Commits(loop)  # type: ignore[arg-type]
    sampler = threading.Thread(target=commits.run, daemon=True)
    stop = threading.Event()
    kills: list[tuple[str, int, float, float]] = []  # (what, node, killed at, back at)
    t0 = time.monotonic()
    with running(loop):
        sampler.start()
        feeder = paced(RATE, stop, send)
        try:
            wait_for(lambda: promoted() >= 1, 60, "a first promotion")
            for what, topic in (("labels.text[0]", labels_topic), ("models.updates[0]", None)):
                if topic is None:  # right after a promotion: its transaction is likely open
                    n = promoted()
                    wait_for(lambda n=n: promoted() > n, 30, "a promotion")
                    topic = updates_topic
                node = cluster.leader(topic, 0)
                cluster.kill(node)
                killed = time.time()
                wait_for(lambda k=killed: commits.after(k) is not None, 60,
                         f"a commit of the learner without node {node}")  # fmt: skip
                cluster.start_node(node, libs)
                kills.append((what, node, killed, time.time()))
            n = promoted()
            wait_for(lambda: promoted() >= n + 2, 60, "two promotions after the chaos")
        finally:
            stop.set()
            feeder.join(10)
        assert producer.flush(30) == 0
        produced = acked[0]
        last = (labels_topic, 0)
        wait_for(lambda: handler.state.processed.get(last) == produced - 1, 60, "every label")
    commits.stop.set()
    sampler.join(5)
    commits.sample()  # the last round, committed as the loop stopped
    run_s = time.monotonic() - t0

    # every label committed once, none skipped, and learned once
    assert failed[0] == 0
    assert _group_offset(cluster.bootstrap, settings.group_id, labels_topic) == produced
    assert handler.learner.totals.labels == produced, "a label learned twice or never"
    # every announcement names a stored, intact version; none twice; every promotion announced
    records = _committed_records(cluster.bootstrap, updates_topic)
    announced = [decode(m.value(), ModelVersion) for m in records]
    pairs = Counter((mv.name, mv.model_version) for mv in announced)
    assert pairs and max(pairs.values()) == 1, pairs
    for mv in announced:
        card = store.verify(mv.name, mv.model_version)
        assert mv.sha256 == card.sha256 == artifact_sha256(store.artifact_path(MODEL, card.version))
        assert mv.stage == "champion" and mv.name == MODEL
    versions = [mv.model_version for mv in announced]
    assert versions == [p.version for p in handler.state.promotions]
    assert store.champion(MODEL) == versions[-1] == handler.learner.champion_version
    assert set(store.versions(MODEL)) == {"1", *versions}, "a stored version never announced"

    state = handler.state
    without = "; ".join(
        f"{what} leader (node {node}): {(commits.after(k) or math.nan) - k:.1f} s, node down "
        f"{back - k:.1f} s"
        for what, node, k, back in kills
    )
    print(
        f"\nlearner on 3 brokers: {produced} labels, {len(versions)} versions announced once "
        f"each ({', '.join(versions)}); {commits.totals()}; labels read "
        f"again {state.reread}, announcements sent again {state.reannounced}; kill -9 to the "
        f"learner's next commit: {without}; run {run_s:.0f} s"
    )
