from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

import orjson
import pytest

from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import Producer
from streamsense.services.observability.health import HealthServer
from streamsense.services.settings import StreamsenseSettings
from tests.kafka_helpers import EchoHandler

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback test server
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


def test_health_reflects_the_loop_and_metrics_count_messages(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    src, out = make_topic("in"), make_topic("out")
    p = Producer(settings)
    for i in range(7):
        p.produce(src, b"bad" if i == 3 else b"ok")
    p.flush(10)
    loop = BatchLoop(
        settings,
        LoopConfig([src], group_id, delivery="at-least-once"),
        EchoHandler(out),
        Producer(settings),
    )
    with HealthServer(loop.health, port=0) as hs:
        base = f"http://127.0.0.1:{hs.port}"
        code, body = _get(base + "/healthz")
        assert code == 503 and orjson.loads(body)["ok"] is False  # not running yet
        loop.run(max_messages=7)
        code, body = _get(base + "/metrics")
        text = body.decode()
        svc = settings.service_name
        assert code == 200
        assert f'streamsense_messages_consumed_total{{service="{svc}",topic="{src}"}} 7.0' in text
        assert f'streamsense_messages_produced_total{{service="{svc}",topic="{out}"}} 6.0' in text
        assert (
            f'streamsense_dlq_total{{error="ValueError",service="{svc}",topic="{src}"}} 1.0' in text
        )
        assert f'streamsense_batch_size_count{{service="{svc}"}}' in text
        assert _get(base + "/nope")[0] == 404
