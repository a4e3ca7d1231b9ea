"""What an older or foreign writer left in Redis costs one entry, never a whole route (the real
gateway over a real Redis, values written with raw Redis commands as such a writer would).

Before: one stream entry without its ``json`` field, one latest result that was a JSON list, or
one lag that was not a number made ``/api/stats``, ``/api/models`` and the source's routes
answer ``500 Internal Server Error`` (text/plain, without the security headers), with a
traceback logged on every poll; the dashboard's initial load stopped at the first such 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import orjson
import pytest
import redis

from streamsense.schemas.registry import encode
from streamsense.services.gateway.security import CSP
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.keys import RedisKeys
from tests.sink import factory

pytestmark = pytest.mark.integration

PREFIX = "ssstored"
KEYS = RedisKeys(PREFIX)


@pytest.fixture(scope="module")
def gateway(stack: dict[str, str]) -> Iterator[str]:
    r = redis.Redis.from_url(stack["redis_url"])
    good = encode(factory.sentiment("mixed", 1))
    stream = KEYS.stream("sentiment", "mixed")
    r.delete(stream)
    r.xadd(stream, {"json": good})
    r.xadd(stream, {"other": b"x"})  # no json field
    r.xadd(stream, {"json": b"[1, 2]"})  # not an object
    r.xadd(stream, {"json": b"{not json"})
    r.xadd(stream, {"json": good})
    r.hset(KEYS.latest("sentiment", "mixed"), mapping={"json": good, "written_ms": b"soon"})
    r.hset(KEYS.latest("sentiment", "listed"), mapping={"json": b"[1, 2]", "written_ms": 1})
    r.sadd(KEYS.sources("sentiment"), "mixed", "listed")
    r.hset(KEYS.sink_lag, mapping={"results.sentiment[0]": b"lots", "results.sentiment[1]": 7})
    r.set(KEYS.thumb_meta("wrongtype"), b"a string where a hash belongs")
    r.set(KEYS.thumb("wrongtype"), b"\xff\xd8")
    r.close()
    settings = GatewaySettings(
        redis_url=stack["redis_url"],
        redis_prefix=PREFIX,
        gateway_port=0,
        gateway_stats_window_s=3600,  # the entries above stay in the window on a slow machine
    )
    with ServerThread(settings) as server:
        yield server.url


def _json(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    body: dict = orjson.loads(r.content)
    return body


def test_lists_skip_what_is_not_a_result_and_say_so(
    gateway: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "streamsense.services.gateway.stored")
    with httpx.Client(base_url=gateway, timeout=10) as http:
        for _ in range(2):  # polled: logged once per key and reason, not per poll
            page = _json(http.get("/api/results/sentiment/mixed"), 200)
            stats = _json(http.get("/api/stats"), 200)
            models = _json(http.get("/api/models"), 200)
    assert [item["result"]["source_id"] for item in page["items"]] == ["mixed", "mixed"]
    assert page["skipped"] == 3
    assert stats["consumer_lag"] == {"results.sentiment[1]": 7} and stats["total_lag"] == 7
    assert stats["tasks"]["sentiment"]["e2e_ms"] is not None, "the valid entries still count"
    assert models["in_service"] == [
        {"task": "sentiment", "name": "sentiment", "version": "3", "sources": 1}
    ]
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("gateway.stored")]
    reasons = ["no 'json' field", "a JSON list, not an object", "not valid JSON", "not a count"]
    for why in reasons:
        assert sum(why in line for line in lines) >= 1, (why, lines)
    assert len(lines) == len(set(lines)), "each logged once"


def test_paging_goes_on_past_entries_that_are_not_results(gateway: str) -> None:
    with httpx.Client(base_url=gateway, timeout=10) as http:
        oldest = {"since": "0", "limit": 3}
        first = _json(http.get("/api/results/sentiment/mixed", params=oldest), 200)
        assert len(first["items"]) == 1 and first["skipped"] == 2
        rest = _json(
            http.get(
                "/api/results/sentiment/mixed", params={"since": first["last_id"], "limit": 3}
            ),
            200,
        )
    assert len(rest["items"]) == 1 and rest["skipped"] == 1


def test_one_unusable_stored_value_is_a_502_or_a_null_not_a_500(gateway: str) -> None:
    with httpx.Client(base_url=gateway, timeout=10) as http:
        refused = _json(http.get("/api/latest/sentiment/listed"), 502)
        assert "not a valid result" in refused["detail"]
        latest = _json(http.get("/api/latest/sentiment/mixed"), 200)
        assert latest["written_ms"] is None and latest["result"]["source_id"] == "mixed"
        # Anything unforeseen (here Redis' WRONGTYPE) is still JSON with every header.
        broken = _json(http.get("/api/thumbnail/wrongtype"), 500)
    assert broken == {"error": "internal error in the gateway; its log has the details"}
