"""A result whose JSON gives a key twice is stored as it was validated.

JSON allows ``{"source_id": "attacker", ..., "source_id": "victim"}``; our parser keeps the
last value, others keep the first. The sink validates the record as ``victim``'s: what it
stores and publishes must say ``victim`` to every reader, not carry the raw bytes that say
``attacker`` to a reader keeping the first value. Real broker, real sink, real Redis.
"""

from __future__ import annotations

import threading

import orjson
import pytest
import redis

from streamsense.schemas.registry import decode_wire, encode
from streamsense.schemas.results import SentimentResult
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.service import RedisSink
from tests.conftest import wait_for
from tests.sink import factory

pytestmark = pytest.mark.integration


def _twice(result: SentimentResult) -> bytes:
    """The result's JSON with ``source_id`` and ``model.name`` each given first as something
    else (the later, real values are the ones our parser keeps)."""
    doc = orjson.loads(encode(result))
    version = orjson.dumps(doc["model"]["version"]).decode()
    rest = ",".join(f"{orjson.dumps(k).decode()}:{orjson.dumps(v).decode()}"
                    for k, v in doc.items() if k != "model")  # fmt: skip
    model = f'{{"name":"evil","name":"sentiment","version":{version}}}'
    head = f'{{"source_id":"attacker","model":{model},'
    return (head + rest + "}").encode()


def test_duplicate_keys_reach_redis_as_the_validated_values(
    stack: dict[str, str], request: pytest.FixtureRequest
) -> None:
    settings = factory.sink_settings(stack["bootstrap"], stack["redis_url"], request.node.name)
    good = factory.sentiment("victim", 0)
    raw = _twice(good)
    parsed, wire = decode_wire(raw, SentimentResult)
    assert parsed.source_id == "victim"
    assert raw.count(b'"source_id"') == 2 and wire.count(b'"source_id"') == 1
    factory.produce(settings, [("results.sentiment", raw, "victim", None)])

    keys = RedisKeys(settings.redis_prefix)
    r = redis.Redis.from_url(stack["redis_url"])
    pubsub = r.pubsub()
    pubsub.psubscribe(keys.channel_pattern)
    sink = RedisSink(settings)
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: r.hget(keys.latest("sentiment", "victim"), "json"), 30, "stored")
    finally:
        sink.stop()
        thread.join(60)
    stored = r.hget(keys.latest("sentiment", "victim"), "json") or b""
    entries = r.xrange(keys.stream("sentiment", "victim"))
    published = [
        msg["data"]
        for _ in range(10)
        if (msg := pubsub.get_message(timeout=0.5)) is not None and msg["type"] == "pmessage"
    ]
    assert not r.exists(keys.latest("sentiment", "attacker"))
    pubsub.close()
    r.close()

    assert published, "the result was not published"
    for value in (stored, entries[0][1][b"json"], *published):
        assert value.count(b'"source_id"') == 1, value[:120]
        assert value.count(b'"name"') == 1, value[:120]
        doc = orjson.loads(value)
        assert doc["source_id"] == "victim"
        assert doc["model"]["name"] == "sentiment"
