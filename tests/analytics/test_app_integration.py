"""The analytics app in a child process against the session's real Kafka and Redis."""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from streamsense.schemas.analytics import Alert, WindowStat
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import decode, encode
from streamsense.services.analytics import synthetic as syn
from streamsense.services.bench.analytics import AnalyticsProcess, uncommitted
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import TOPICS, ensure_topics
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.settings import StreamsenseSettings
from tests.analytics.helpers import B, S
from tests.conftest import wait_for
from tests.kafka_helpers import read_all

#: Faust 0.15 was seen, rarely, to skip a record right after a restart, and a restarted static
#: member to never fetch (docs/analytics.md, "Known problems"); a test run gets one second
#: chance for those, and no more. (The "first batch never acknowledged" stall that also took
#: reruns was aiokafka narrowing its producer's metadata; tests/analytics/test_transport.py.)
pytestmark = [pytest.mark.integration, pytest.mark.flaky(reruns=1)]


class Env:
    """One test's topics (unique prefix), app id, Redis prefix and app processes."""

    def __init__(self, stack: dict[str, str], tmp_path: Path) -> None:
        tag = uuid.uuid4().hex[:8]
        self.bootstrap = stack["bootstrap"]
        self.redis_prefix = f"t{tag}"
        self.settings = StreamsenseSettings(
            kafka_bootstrap=self.bootstrap, redis_url=stack["redis_url"],
            topic_prefix=f"t{tag}.", service_name=f"test-analytics-{tag}",
        )  # fmt: skip
        self.app_id = f"ana-{tag}"
        self.tmp = tmp_path
        self.env = {
            "STREAMSENSE_KAFKA_BOOTSTRAP": self.bootstrap,
            "STREAMSENSE_REDIS_URL": stack["redis_url"],
            "STREAMSENSE_TOPIC_PREFIX": self.settings.topic_prefix,
            "STREAMSENSE_HOME": str(tmp_path / "home"),
            "STREAMSENSE_ANALYTICS_APP_ID": self.app_id,
            "STREAMSENSE_REDIS_PREFIX": self.redis_prefix,
            "STREAMSENSE_ANALYTICS_TUMBLING_S": "10",
            "STREAMSENSE_ANALYTICS_HOPPING_SIZE_S": "20",
            "STREAMSENSE_ANALYTICS_HOPPING_STEP_S": "10",
            "STREAMSENSE_ANALYTICS_GRACE_S": "0",
            "STREAMSENSE_ANALYTICS_IDLE_CLOSE_S": "600",
            "STREAMSENSE_ANALYTICS_TICK_S": "0.2",
            "STREAMSENSE_ANALYTICS_REDIS_FLUSH_S": "0.1",
            "STREAMSENSE_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "STREAMSENSE_ANALYTICS_HEARTBEAT_INTERVAL_S": "1",
        }
        ensure_topics(self.settings, TOPICS)
        self.producer = Producer(self.settings)
        self.redis = redis.Redis.from_url(stack["redis_url"], decode_responses=True)
        self.procs: list[AnalyticsProcess] = []

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    def send(self, topic: str, *messages: Any) -> None:
        for m in messages:
            self.producer.produce(self.topic(topic), encode(m), key=m.source_id)
        assert self.producer.flush(10) == 0

    def start(self, *args: str, **env: str) -> AnalyticsProcess:
        n = len(self.procs) + 1
        proc = AnalyticsProcess({**self.env, **env}, self.tmp / f"run{n}.log", args).start()
        self.procs.append(proc)
        proc.wait(lambda h: bool(h.get("recovered")), 60, "tables recovered")
        return proc

    def hash(self, kind: str, source: str) -> dict[str, str]:
        data: dict[str, str] = self.redis.hgetall(
            RedisKeys(self.redis_prefix).analytics(kind, source)
        )
        return data

    def windows(self, kind: str, expect: int) -> dict[tuple[str, str, int], dict[str, float]]:
        msgs = read_all(self.bootstrap, self.topic(f"analytics.{kind}"), expect, timeout=30)
        stats = [decode(m.value(), WindowStat) for m in msgs]
        return {(w.source_id, w.window, (w.window_start_ns - B) // S): w.values for w in stats}

    def close(self) -> None:
        for p in self.procs:
            p.close()
        self.producer.close(5)
        self.redis.close()


def test_exact_window_counts_dead_letters_and_a_clean_sigterm(env: Env) -> None:
    env.send(
        "results.detections",
        syn.detection("cam-a", B + 1 * S, {"person": 2, "car": 1}),
        syn.detection("cam-a", B + 2 * S, {"person": 5}),
        syn.detection("cam-a", B + 12 * S, {"dog": 1}),
    )
    env.send(
        "results.segments",
        syn.segment("cam-a", B + 1 * S, 0.30),
        syn.segment("cam-a", B + 4 * S, 0.10),
    )
    labels = ["negative", "positive", "negative", "neutral"]
    env.send(
        "results.sentiment", *[syn.sentiment("chat-a", B + i * S, x) for i, x in enumerate(labels)]
    )
    env.producer.produce(env.topic("results.detections"), b"{not json", key="cam-a")
    app = env.start()
    app.wait(lambda h: h["events"] == 9 and h["dead_lettered"] == 1, 30, "9 events applied")
    # a later event moves event time on and closes the earlier windows (grace 0)
    env.send("results.detections", syn.detection("cam-a", B + 45 * S, {}))
    env.send("results.sentiment", syn.sentiment("chat-a", B + 45 * S, "positive"))

    cam = env.windows("camera", expect=5)
    first = {
        "frames": 2.0, "frames.detections": 2.0, "frames.segments": 2.0, "people.max": 5.0,
        "people.frames": 2.0, "people.present": 1.0, "count.person": 7.0, "count.car": 1.0,
    }  # fmt: skip
    second = {
        "frames": 1.0, "frames.detections": 1.0, "frames.segments": 0.0, "people.max": 0.0,
        "people.frames": 0.0, "people.present": 0.0, "count.dog": 1.0,
    }  # fmt: skip
    assert cam == {
        ("cam-a", "tumbling", 0): first,
        ("cam-a", "tumbling", 10): second,
        ("cam-a", "hopping", -10): first,
        ("cam-a", "hopping", 0): {
            **first,
            "frames": 3.0,
            "frames.detections": 3.0,
            "people.present": 2 / 3,
            "count.dog": 1.0,
        },  # fmt: skip
        ("cam-a", "hopping", 10): second,
    }
    text = env.windows("text", expect=3)
    assert text[("chat-a", "tumbling", 0)] == {
        "messages": 4.0, "mean_sentiment": -0.25, "negative_rate": 0.5,
        "count.negative": 2.0, "count.positive": 1.0, "count.neutral": 1.0,
    }  # fmt: skip
    assert text[("chat-a", "hopping", -10)] == text[("chat-a", "tumbling", 0)]

    [dead] = read_all(env.bootstrap, env.topic("results.detections.dlq"), 1)
    info = DeadLetterInfo.from_kafka_headers(dead.headers())
    assert dead.value() == b"{not json" and dead.key() == b"cam-a"
    assert info.error_class == "SchemaError" and "not valid JSON" in info.error_message
    assert info.original_topic == env.topic("results.detections")

    wait_for(lambda: env.hash("camera", "cam-a").get("total.frames") == "4", 10, "redis totals")
    h = env.hash("camera", "cam-a")
    assert h["tumbling.start_ns"] == str(B + 10 * S) and h["tumbling.count.dog"] == "1"
    assert h["total.count.person"] == "7" and h["events"] == "6"
    wait_for(lambda: env.hash("text", "chat-a").get("total.messages") == "5", 10, "text hash")
    assert env.hash("text", "chat-a")["tumbling.negative_rate"] == "0.5"

    with urllib.request.urlopen(f"http://127.0.0.1:{app.port}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert 'streamsense_analytics_events_total{kind="camera",service="analytics"} 6.0' in metrics
    assert (
        'streamsense_analytics_windows_total{kind="text",service="analytics",window="hopping"}'
        in metrics
    )

    assert app.terminate(timeout=30) == 0
    log = app.log_path.read_text()
    assert "Traceback" not in log
    where = re.escape(env.topic("results.detections")) + r"\[\d\]@\d+ -> "
    assert re.search(where, log), "dead letters are logged as topic[partition]@offset"


def _totals(env: Env, kind: str, sources: list[str]) -> dict[str, dict[str, str]]:
    out = {}
    for s in sources:
        h = env.hash(kind, s)
        out[s] = {k: v for k, v in h.items() if k.startswith("total.") or k == "events"}
    return out


def test_kill_9_recovers_the_tables_exactly(env: Env) -> None:
    cams, chats = [f"cam-{i}" for i in range(6)], [f"chat-{i}" for i in range(3)]
    dets = [syn.detection(cams[i % 6], B + i * S // 10, {"person": i % 3}) for i in range(240)]
    sents = [syn.sentiment(chats[i % 3], B + i * S // 10, ("negative", "positive")[i % 2])
             for i in range(90)]  # fmt: skip
    env.send("results.detections", *dets)
    env.send("results.sentiment", *sents)
    total = len(dets) + len(sents)
    # commit rarely: at the kill everything applied is still uncommitted, so a restart reads
    # it all again and only the offsets kept in the rows stop it from counting twice
    first = env.start(STREAMSENSE_ANALYTICS_COMMIT_INTERVAL_S="300")
    first.wait(lambda h: h["events"] == total, 60, "all events applied")

    def everything() -> dict[str, dict[str, str]]:
        return {**_totals(env, "camera", cams), **_totals(env, "text", chats)}

    def counted() -> int:
        return sum(int(t.get("events", 0)) for t in everything().values())

    wait_for(lambda: counted() == total, 10, "all totals in redis")
    before = everything()
    assert before["cam-1"]["total.count.person"] == str(sum(i % 3 for i in range(1, 240, 6)))
    first.kill9()
    inputs = [env.topic("results.detections"), env.topic("results.sentiment")]
    assert uncommitted(env.settings, env.app_id, inputs) == total
    layout = RedisKeys(env.redis_prefix)
    keys = [layout.analytics("camera", c) for c in cams] + [
        layout.analytics("text", c) for c in chats
    ]
    env.redis.delete(*keys)

    t0 = time.monotonic()
    second = env.start()
    h = second.health()
    assert h is not None
    # the rows that reached the changelog before the kill (the newest writes may not have:
    # their events are uncommitted too, so they are read again and applied once)
    restored = h["table_events"]
    print(f"restart to recovered tables: {time.monotonic() - t0:.2f} s, {restored} restored")
    assert 0 < restored <= total
    # everything is read again; the replay is done when every input offset is committed again
    wait_for(lambda: uncommitted(env.settings, env.app_id, inputs) == 0, 30, "replay committed")
    h = second.wait(lambda h: h["table_events"] == total, 10, "the replay")
    # no double count: exactly the events the restored rows lacked were applied again, the
    # others were skipped (Faust may deliver a record twice around its seek, or skip one:
    # `gaps`; either is harmless as long as the tables come out exact)
    assert h["events"] == total - restored
    assert h["duplicates"] + h["gaps"] >= restored
    wait_for(lambda: everything() == before, 10, "recovered totals back in redis")

    more = [syn.detection(c, B + 100 * S, {"person": 10}) for c in cams]
    env.send("results.detections", *more)
    again = total - restored
    second.wait(lambda h: h["events"] == again + 6 and h["table_events"] == total + 6, 30, "new")
    wait_for(lambda: env.hash("camera", "cam-0").get("events") == "41", 10, "redis")
    assert "total.count.person" not in before["cam-0"]  # i % 6 == 0: never a person
    expect = 10
    assert env.hash("camera", "cam-0")["total.count.person"] == str(expect)
    assert second.terminate() == 0
    assert uncommitted(env.settings, env.app_id, inputs) == 0  # SIGTERM commits


RULES = """
rules:
  - {name: crowd, kind: camera, metric: people, window: event, above: 3, severity: critical,
     sources: ["cam-c"]}
  - {name: neg, kind: text, metric: negative_rate, window: tumbling, above: 0.5, min_count: 2}
  - {name: silent, kind: camera, silent_for_s: 1.5, sources: ["cam-s"]}
"""


def test_alert_rules_fire_once_per_breach(env: Env, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    people = [5, 6, 2, 4, 4]  # breach, same breach, clear, breach, same breach
    crowd_in = [syn.detection("cam-c", B + i * S, {"person": n}) for i, n in enumerate(people)]
    env.send("results.detections", *crowd_in)
    plan = [(0, "negative"), (1, "negative"), (2, "positive"), (10, "negative"), (11, "negative"),
            (30, "positive"), (31, "negative"), (40, "negative"), (41, "negative"),
            (50, "positive")]  # fmt: skip
    env.send("results.sentiment", *[syn.sentiment("chat", B + t * S, x) for t, x in plan])
    pubsub = env.redis.pubsub()
    pubsub.subscribe(RedisKeys(env.redis_prefix).alerts_channel)
    app = env.start("--rules", str(rules))
    app.wait(lambda h: h["events"] == len(people) + len(plan), 30, "events applied")

    env.send("results.detections", syn.detection("cam-s", B, {}))
    h = app.wait(lambda h: h["alerts"] >= 5, 20, "first silence alert")
    ticks = h["ticks"]  # the breach goes on for 10 more timer ticks (2 s): no second alert
    h = app.wait(lambda h: h["ticks"] >= ticks + 10, 20, "ten more ticks")
    assert h["alerts"] == 5
    env.send("results.detections", syn.detection("cam-s", B + S, {}))  # re-arms
    app.wait(lambda h: h["alerts"] >= 6, 20, "second silence alert")

    msgs = read_all(env.bootstrap, env.topic("alerts"), 6, timeout=20)
    alerts = [decode(m.value(), Alert) for m in msgs]
    assert Counter((a.rule, a.source_id) for a in alerts) == {
        ("crowd", "cam-c"): 2, ("neg", "chat"): 2, ("silent", "cam-s"): 2,
    }  # fmt: skip
    crowd = [a for a in alerts if a.rule == "crowd"]
    assert [(a.value, a.severity, (a.ts_ns - B) // S) for a in crowd] == [
        (5.0, "critical", 0), (4.0, "critical", 3),
    ]  # fmt: skip
    assert [(a.ts_ns - B) // S for a in alerts if a.rule == "neg"] == [10, 50]

    stream = RedisKeys(env.redis_prefix).alerts
    wait_for(lambda: env.redis.xlen(stream) == 6, 10, "alerts in the redis stream")
    in_stream = [decode(fields["json"], Alert) for _, fields in env.redis.xrange(stream)]
    assert Counter(a.rule for a in in_stream) == Counter(a.rule for a in alerts)
    live: list[Alert] = []
    deadline = time.monotonic() + 10
    while len(live) < 6 and time.monotonic() < deadline:
        m = pubsub.get_message(timeout=0.5)
        if m and m["type"] == "message":
            live.append(decode(m["data"], Alert))
    pubsub.close()
    assert Counter(a.rule for a in live) == Counter(a.rule for a in alerts)
    assert app.terminate() == 0


def test_sources_silent_past_the_retention_are_forgotten_for_good(env: Env) -> None:
    env.send("results.detections", syn.detection("cam-gone", B + 1 * S, {"person": 1}))
    env.send("results.sentiment", syn.sentiment("chat-gone", B, "positive"))
    app = env.start(STREAMSENSE_ANALYTICS_SOURCE_TTL_S="3", STREAMSENSE_ANALYTICS_IDLE_CLOSE_S="1")
    app.wait(lambda h: h["events"] == 2, 30, "2 events applied")
    h = app.wait(lambda h: h["forgotten"] == 2, 30, "both sources forgotten")
    assert h["sources"] == {"camera": 0, "text": 0}
    wait_for(lambda: not env.hash("camera", "cam-gone"), 10, "the camera's Redis hash expired")
    assert app.terminate(timeout=30) == 0
    # the changelog ends with tombstones: a restart does not bring the rows back
    again = env.start()
    h = again.wait(lambda h: h["ticks"] > 0, 30, "a tick after recovery")
    assert h["table_events"] == 0 and h["sources"] == {"camera": 0, "text": 0}, h
