"""A Redis that answers but refuses writes (out of memory, a read-only replica after a failover)
is an outage, not bad input: against a real broker and a redis-server of the test's own, the
sink keeps every result, dead-letters none, commits nothing past them, and reports red with
the reason until Redis takes writes again. Before, redis-py's classes (``OutOfMemoryError``,
``ReadOnlyError``, their code stripped, and annotated with the command when raised from a
transaction) did not match the sink's prefix check: each good result was dead-lettered and
lost from Redis while health stayed green."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ResponseError

from streamsense.services.serving.clients import is_transient_reply
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.service import RedisSink
from tests.conftest import wait_for
from tests.sink import factory
from tests.sink.test_outage import OwnRedis
from tests.sink.test_sink import _committed

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    node = OwnRedis(tmp_path, persistence=False)
    node.start()
    yield node
    if node.proc is not None:
        node.kill()


def _refuse_writes(r: redis.Redis, how: str) -> Callable[[], object]:
    """Make the server refuse writes; returns what undoes it."""
    if how == "oom":
        r.config_set("maxmemory", 1)  # below what it uses: every write is refused
        return lambda: r.config_set("maxmemory", 0)
    r.execute_command("REPLICAOF", "127.0.0.1", "1")  # a replica of nothing: read-only
    return lambda: r.execute_command("REPLICAOF", "NO", "ONE")


@pytest.mark.parametrize("how", ["oom", "readonly"])
def test_refusals_from_a_real_redis_are_transient_and_data_errors_are_not(
    own_redis: OwnRedis, how: str
) -> None:
    r = redis.Redis.from_url(own_redis.url)
    r.set("k", "v")
    undo = _refuse_writes(r, how)
    try:
        with pytest.raises(ResponseError) as raised:  # queued in MULTI: redis-py annotates it
            with r.pipeline(transaction=True) as pipe:
                pipe.xadd("s", {"json": b"OOM) of pipeline caused error: x"})
                pipe.execute(raise_on_error=False)
        assert "of pipeline caused error" in str(raised.value)
        assert is_transient_reply(raised.value)
        with r.pipeline(transaction=False) as pipe:  # a plain pipeline: in the replies
            pipe.set("k2", "v")
            (reply,) = pipe.execute(raise_on_error=False)
        assert is_transient_reply(reply)
    finally:
        undo()
    with r.pipeline(transaction=True) as pipe:  # a data error inside EXEC is not "not now"
        pipe.hset("k", "f", "v")  # WRONGTYPE: k is a string
        (wrongtype,) = pipe.execute(raise_on_error=False)
    assert isinstance(wrongtype, ResponseError)
    assert not is_transient_reply(wrongtype)
    assert not is_transient_reply(
        ResponseError("Command # 1 (SET OOM) of pipeline caused error: x")
    )
    r.close()


@pytest.mark.parametrize("how", ["oom", "readonly"])
def test_a_redis_refusing_writes_holds_the_results_and_reports_red(
    stack: dict[str, str], own_redis: OwnRedis, how: str, request: pytest.FixtureRequest
) -> None:
    settings = factory.sink_settings(
        stack["bootstrap"], own_redis.url, request.node.name, sink_retry_cap_s=0.3
    )
    r = redis.Redis.from_url(own_redis.url)
    keys = RedisKeys(settings.redis_prefix)
    stream = keys.stream("sentiment", "log-r")
    sink = RedisSink(settings)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sink.run()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        factory.produce(settings, [factory.result_record(factory.sentiment("log-r", 0))])
        wait_for(lambda: r.xlen(stream) == 1, 60, "the first result in Redis")
        wait_for(lambda: _committed(settings, "results.sentiment") == 1, 30, "offset committed")
        undo = _refuse_writes(r, how)
        try:
            msgs = [factory.sentiment("log-r", i) for i in range(1, 6)]
            factory.produce(settings, [factory.result_record(m) for m in msgs])
            wait_for(lambda: not sink.health()[0], 30, "health red while Redis refuses writes")
            _ok, detail = sink.health()
            assert detail["redis_ok"] is False
            expected = "OutOfMemoryError" if how == "oom" else "ReadOnlyError"
            assert expected in str(detail["redis_error"])
            assert any(expected in p for p in detail["problems"]), detail["problems"]
            tried = detail["redis_retries"]
            wait_for(lambda: sink.health()[1]["redis_retries"] >= tried + 2, 30, "retries")
            assert sink.health()[1]["dead_lettered"] == 0
            assert _committed(settings, "results.sentiment") == 1
        finally:
            undo()
        wait_for(
            lambda: r.xlen(stream) == 6, 60, "every held result written once Redis takes writes"
        )
        wait_for(lambda: sink.health()[0], 30, "health green again")
        wait_for(lambda: _committed(settings, "results.sentiment") == 6, 30, "offsets committed")
        assert sink.health()[1]["dead_lettered"] == 0
        assert sink.health()[1]["redis_retries"] > 0
    finally:
        sink.stop()
        thread.join(60)
        r.close()
    assert not errors
