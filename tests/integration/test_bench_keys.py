"""A bench's rig leaves no Redis keys behind: its prefixed keys are dropped at the end, and
nobody else's."""

from __future__ import annotations

import uuid

import pytest
import redis

from streamsense.services.bench.harness import drop_keys
from streamsense.services.serving.keys import RedisKeys

pytestmark = pytest.mark.integration


def test_drop_keys_removes_the_bench_prefix_only(stack: dict[str, str]) -> None:
    r = redis.Redis.from_url(stack["redis_url"])
    mine, other = RedisKeys(f"bl{uuid.uuid4().hex[:8]}"), RedisKeys(f"bm{uuid.uuid4().hex[:8]}")
    for k in (mine, other):
        r.xadd(k.stream("sentiment", "log-a"), {"json": b"{}"})
        r.hset(k.sink_positions, "results.sentiment[0]", 3)
        r.sadd(k.cameras, *[f"cam-{i}" for i in range(5)])
    r.mset({f"{mine.prefix}:n{i}": i for i in range(2500)})  # more than one DEL's worth
    drop_keys(stack["redis_url"], mine)
    assert list(r.scan_iter(match=f"{mine.prefix}:*")) == []
    assert len(list(r.scan_iter(match=f"{other.prefix}:*"))) == 3
    for key in r.scan_iter(match=f"{other.prefix}:*"):
        r.delete(key)
    r.close()
