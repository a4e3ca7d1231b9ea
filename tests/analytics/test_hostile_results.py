"""Valid-looking results that attack the analytics app's state, against the real broker/Redis.

Before the fixes:

- four detection results of one source with 2,000 distinct labels each made its table row a
  2.3 MB changelog record: ``MessageSizeTooLargeError``, the app crashed, and crashed again on
  every restart (the records are read again): all analytics down for four messages;
- with ``STREAMSENSE_ANALYTICS_SENTIMENT_SCORE=probs``, ``probs: {positive: 1e308}`` twice
  summed to ``inf``: ``mean_sentiment`` was ``inf`` in Redis and ``null`` in the window topic
  and in the changelog (JSON has no infinity), where a restart reads it back as ``None``.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from streamsense.schemas.analytics import WindowStat
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import decode
from streamsense.services.analytics import synthetic as syn
from tests.analytics.helpers import B, S
from tests.analytics.test_app_integration import Env
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.raw_headers import produce_raw

pytestmark = [pytest.mark.integration, pytest.mark.flaky(reruns=1)]


def _flood(r: int) -> dict[str, int]:
    return {f"L{r}-{i:05d}-" + "x" * 50: 1 for i in range(2000)}


def test_a_flood_of_distinct_labels_is_bounded_counted_and_survives_a_restart(env: Env) -> None:
    for r in range(4):
        flood = {**_flood(r), "person": 2} if r == 3 else _flood(r)
        env.send("results.detections", syn.detection("cam-flood", B + r * S, flood))
    env.send("results.detections", syn.detection("cam-ok", B, {"person": 1, "car": 2}))
    app = env.start(STREAMSENSE_ANALYTICS_MAX_LABELS="50")
    h = app.wait(lambda h: h["events"] == 5, 60, "all 5 results applied")
    assert h["ok"] and not h["crashed"], h
    # the first 50 labels get a count; the rest, and the 2 persons (label 8001), do not
    assert h["labels_over"] == 8000 - 50 + 2
    env.send("results.detections", syn.detection("cam-flood", B + 30 * S, {"person": 1}))
    [win] = [
        w
        for w in (decode(m.value(), WindowStat) for m in read_all(
            env.bootstrap, env.topic("analytics.camera"), 3, timeout=30))
        if w.source_id == "cam-flood" and w.window == "tumbling"
    ]  # fmt: skip
    assert win.values["labels.over"] == 8000 - 50 + 2
    assert sum(k.startswith("count.") for k in win.values) == 50
    assert win.values["people.max"] == 2.0, "people are counted whatever the label limit"

    def flood_hash() -> dict[str, str]:
        return env.hash("camera", "cam-flood")

    wait_for(lambda: flood_hash().get("events") == "5", 10, "cam-flood totals in redis")
    h_flood = flood_hash()
    assert sum(k.startswith("total.count.") for k in h_flood) == 50
    assert h_flood["total.labels.over"] == str(8000 - 50 + 2 + 1)
    wait_for(lambda: env.hash("camera", "cam-ok").get("total.count.car") == "2", 10, "cam-ok")
    assert app.terminate(timeout=30) == 0
    assert "STREAMSENSE_ANALYTICS_MAX_LABELS" in app.log_path.read_text()

    again = env.start(STREAMSENSE_ANALYTICS_MAX_LABELS="50")
    h = again.wait(lambda h: h["table_events"] == 6, 30, "rows restored")
    assert h["events"] == 0 and h["duplicates"] == 0, "nothing applied twice"
    assert again.terminate(timeout=30) == 0
    assert "Traceback" not in again.log_path.read_text()


def _raw(message: Any, **changes: Any) -> bytes:
    d = message.to_json_dict()
    d.update(changes)
    return orjson.dumps(d)


def test_fractions_outside_0_1_are_dead_letters_and_the_windows_stay_finite(env: Env) -> None:
    base = syn.sentiment("chat", B, "positive")
    hostile = [{"positive": 1e308}, {"positive": 1e308}, {"negative": -5.0}]
    for probs in hostile:
        env.producer.produce(env.topic("results.sentiment"), _raw(base, probs=probs), key="chat")
    seg = syn.segment("cam", B, 0.5)
    env.producer.produce(
        env.topic("results.segments"), _raw(seg, class_areas={"person": 7.5}), key="cam"
    )
    env.send(
        "results.sentiment",
        syn.sentiment("chat", B + 1 * S, "positive"),
        syn.sentiment("chat", B + 2 * S, "negative"),
    )
    app = env.start(STREAMSENSE_ANALYTICS_SENTIMENT_SCORE="probs")
    app.wait(lambda h: h["events"] == 2 and h["dead_lettered"] == 4, 30, "2 applied, 4 dead")
    env.send("results.sentiment", syn.sentiment("chat", B + 30 * S, "neutral"))
    wins = read_all(env.bootstrap, env.topic("analytics.text"), 2, timeout=30)
    for m in wins:
        assert b"null" not in m.value()
        values = decode(m.value(), WindowStat).values
        assert values["messages"] == 2.0 and values["mean_sentiment"] == pytest.approx(0.0)
    wait_for(lambda: env.hash("text", "chat").get("events") == "3", 10, "text totals")
    mean = float(env.hash("text", "chat")["total.mean_sentiment"])
    assert math.isfinite(mean) and abs(mean) <= 1.0

    dead = read_all(env.bootstrap, env.topic("results.sentiment.dlq"), 3, timeout=20)
    reasons = [DeadLetterInfo.from_kafka_headers(m.headers()).error_message for m in dead]
    assert all("a fraction in [0, 1] is expected" in r for r in reasons), reasons
    assert "probs['positive'] is 1e+308" in reasons[0]
    [seg_dead] = read_all(env.bootstrap, env.topic("results.segments.dlq"), 1, timeout=20)
    reason = DeadLetterInfo.from_kafka_headers(seg_dead.headers()).error_message
    assert "class_areas['person'] is 7.5" in reason
    assert app.terminate(timeout=30) == 0


def test_a_header_key_that_is_not_utf8_neither_crashes_nor_stalls_the_app(env: Env) -> None:
    """Before: aiokafka raised ``UnicodeDecodeError`` unpacking the fetched batch, the app
    crashed, and crashed again at every restart (the record is read again)."""
    raw = [(b"\xff\xfe-key", b"x")]
    values = [orjson.dumps(syn.sentiment("chat", B + i * S, label).to_json_dict())
              for i, label in enumerate(("positive", "negative", "neutral"))]  # fmt: skip
    bad = b'{"not": "a result"}'
    produce_raw(env.bootstrap, env.topic("results.sentiment"), [
        (b"chat", values[0], []),
        (b"chat", values[1], raw),  # a good result: analytics reads no header, it counts
        (b"chat", bad, raw),  # dead-lettered, with the key as it could be read
        (b"chat", values[2], [(b"ok", b"1")]),
    ])  # fmt: skip
    app = env.start()
    h = app.wait(lambda h: h["events"] == 3 and h["dead_lettered"] == 1, 60, "3 counted, 1 dead")
    assert h["ok"] and not h["crashed"], h
    [dead] = read_all(env.bootstrap, env.topic("results.sentiment.dlq"), 1, timeout=20)
    assert dead.value() == bad
    assert dict(dead.headers() or [])["\ufffd\ufffd-key"] == b"x"
    assert DeadLetterInfo.from_kafka_headers(dead.headers()).error_class == "UnknownSchemaError"
    assert app.terminate(timeout=30) == 0
    assert "UnicodeDecodeError" not in app.log_path.read_text()
