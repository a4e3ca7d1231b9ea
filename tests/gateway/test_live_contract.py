"""``/ws/live`` forwards only results as the sink publishes them (the real gateway, real Redis
pub/sub, real WebSocket clients): anything else published on a live channel is dropped, counted
by reason in ``streamsense_gateway_live_invalid_total``, and the sockets stay open.

Before: every message on ``<prefix>:live:*`` reached every browser as it was, framed as a
result: ``{not json`` made the frame itself invalid JSON, ``[1, 2]``, another task's result, a
result of another source and a channel of no task were all sent as results.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import redis
from websockets.sync.client import ClientConnection, connect

from streamsense.schemas.registry import encode
from streamsense.services.gateway.livemsg import MAX_BYTES, REASONS
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.keys import RedisKeys
from tests.sink import factory

pytestmark = pytest.mark.integration

KEYS = RedisKeys("sslivec")


def _padded(result: bytes, size: int) -> bytes:
    """``result`` with its text padded so the message is ``size`` bytes: a valid envelope."""
    doc = orjson.loads(result)
    doc["text"] += "x" * (size - len(result))
    out = orjson.dumps(doc)
    assert len(out) == size
    return out


@pytest.fixture(scope="module")
def gateway(stack: dict[str, str]) -> Iterator[ServerThread]:
    settings = GatewaySettings(
        redis_url=stack["redis_url"], redis_prefix=KEYS.prefix, gateway_port=0
    )
    with ServerThread(settings) as server:
        yield server


def _invalid(server: ServerThread) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.findall(r'streamsense_gateway_live_invalid_total\{reason="(\w+)"\} (\S+)', text)
    return {reason: float(n) for reason, n in found}


def _hello(ws: ClientConnection) -> None:
    assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"


def test_only_results_of_the_channels_task_and_source_are_forwarded(
    gateway: ServerThread, stack: dict[str, str]
) -> None:
    good = encode(factory.sentiment("chat", 1))
    detection = encode(factory.detection("chat", 1, [(0.1, 0.1, 0.5, 0.5)]))
    hostile = [
        (KEYS.channel("sentiment", "chat"), b"{not json", "not_json"),
        (KEYS.channel("sentiment", "chat"), b"\xff\xfe{}", "not_json"),
        (KEYS.channel("sentiment", "chat"), b'"\\ud800"', "not_json"),
        (KEYS.channel("sentiment", "chat"), b"[1, 2]", "not_object"),
        (KEYS.channel("sentiment", "chat"), b"null", "not_object"),
        (KEYS.channel("sentiment", "chat"), b'{"type": "status", "redis": false}', "wrong_schema"),
        (KEYS.channel("sentiment", "chat"), detection, "wrong_schema"),
        (KEYS.channel("sentiment", "other"), good, "wrong_source"),
        (KEYS.channel("bogus", "chat"), good, "unknown_task"),
        (f"{KEYS.prefix}:live:no-source", good, "bad_channel"),
        (KEYS.channel("sentiment", "chat"), _padded(good, MAX_BYTES + 1), "too_large"),
    ]
    before = _invalid(gateway)
    assert set(before) == set(REASONS), "every reason is exported from the start"
    url = f"ws://{urlsplit(gateway.url).netloc}/ws/live"
    client = redis.Redis.from_url(stack["redis_url"])
    try:
        with connect(url) as everything, connect(url + "?task=sentiment&source=chat") as chat:
            _hello(everything)
            _hello(chat)
            for channel, data, _ in hostile:
                assert client.publish(channel, data) == 1, "the gateway is subscribed"
            client.publish(KEYS.channel("sentiment", "chat"), good)
            for ws in (everything, chat):
                # pub/sub keeps order: anything forwarded from the hostile ones would come first
                msg = orjson.loads(ws.recv(timeout=10))
                assert msg["type"] == "result" and msg["result"] == orjson.loads(good), msg
            # the sockets are open and go on
            client.publish(KEYS.channel("sentiment", "chat"), good)
            assert orjson.loads(chat.recv(timeout=10))["type"] == "result"
            assert orjson.loads(everything.recv(timeout=10))["type"] == "result"
    finally:
        client.close()
    after = _invalid(gateway)
    for reason in REASONS:
        expected = sum(1 for *_, r in hostile if r == reason)
        assert after[reason] - before[reason] == expected, (reason, before, after)
