"""The gateway across a Redis restart: /healthz turns 503 and back, and the live subscriber
reconnects by itself so connected WebSocket clients receive results again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import redis
from websockets.sync.client import connect

from streamsense.schemas.registry import encode
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.keys import RedisKeys
from tests.conftest import wait_for
from tests.sink import factory
from tests.sink.test_outage import OwnRedis

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    node = OwnRedis(tmp_path)
    node.start()
    yield node
    if node.proc is not None:
        node.kill()


def _health(url: str) -> int:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_gateway_survives_a_redis_restart(own_redis: OwnRedis) -> None:
    keys = RedisKeys("ssres")
    settings = GatewaySettings(redis_url=own_redis.url, redis_prefix=keys.prefix, gateway_port=0)
    value = encode(factory.sentiment("chat", 1))
    with ServerThread(settings) as gw:
        ws_url = f"ws://{urlsplit(gw.url).netloc}/ws/live?task=sentiment"
        with connect(ws_url) as ws:
            assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
            assert _health(gw.url) == 200

            own_redis.kill()
            wait_for(lambda: _health(gw.url) == 503, 20, "/healthz to report 503")
            own_redis.start()
            wait_for(lambda: _health(gw.url) == 200, 30, "/healthz to recover")

            client = redis.Redis.from_url(own_redis.url)
            try:
                # The subscriber is back once a publish reaches a subscriber again.
                wait_for(
                    lambda: client.publish(keys.channel("sentiment", "chat"), value) > 0,
                    30,
                    "the live subscriber to resubscribe",
                )
            finally:
                client.close()
            # The hub may have told the client about the outage ({"type": "status"}) first.
            statuses = []
            msg = orjson.loads(ws.recv(timeout=10))
            while msg["type"] == "status":
                statuses.append(msg["redis"])
                msg = orjson.loads(ws.recv(timeout=10))
            assert msg["type"] == "result" and msg["result"]["source_id"] == "chat"
            assert statuses in ([], [False, True]), statuses
