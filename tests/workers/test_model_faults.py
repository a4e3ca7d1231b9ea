"""A model that fails or hangs, in a real sentiment worker on the real broker.

The faults are injected at the adapter boundary (the real model serves everything else): an
input the model fails on is a dead letter and the rest of its batch is served; a model that
fails on everything (e.g. a CUDA error) used to dead-letter every input with a green health, and
now dead-letters none, is red with the reason and serves them all once it recovers; a model call
that never returns used to keep a stopping worker waiting for ever."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from confluent_kafka import Consumer

from streamsense.models.base import ModelAdapter
from streamsense.models.exceptions import ModelOutputError
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import decode, encode
from streamsense.schemas.results import SentimentResult
from streamsense.schemas.text import TextEvent
from streamsense.services.kafka.producer import Producer
from streamsense.services.runner import running
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.handler import MODEL_FAULT_RUN
from streamsense.services.workers.model_call import ModelCaller, ModelHungError
from streamsense.services.workers.settings import WorkerSettings
from tests.conftest import wait_for
from tests.kafka_helpers import committed_total, read_all

pytestmark = [pytest.mark.integration, pytest.mark.models]


class Faulty:
    """The real adapter, except: any input containing BOOM raises, HANG blocks until released,
    WRONG gets an output the adapter refuses, and while ``broken`` every call raises (what a
    failed GPU does)."""

    def __init__(self, inner: ModelAdapter[Any, Any]) -> None:
        self.inner = inner
        self.broken = False
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def predict_batch(self, items: Sequence[str]) -> list[Any]:
        if self.broken:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        if any("BOOM" in t for t in items):
            raise RuntimeError("kernel failed on this input")
        if any("HANG" in t for t in items):
            self.release.wait(120)
        if any("WRONG" in t for t in items):  # what the adapters raise for an invalid output
            raise ModelOutputError("the model's probabilities [nan, nan, nan] are not finite")
        return self.inner.predict_batch(items)


def _send(s: WorkerSettings, texts: list[str], first_seq: int = 0) -> None:
    p = Producer(s)
    for i, t in enumerate(texts, first_seq):
        ev = TextEvent(source_id="app.log", text=t, ts_ns=time.time_ns(), seq=i, trace_id=f"t{i}")
        p.produce(s.topic("text"), encode(ev), key="app.log")
    assert p.flush(10) == 0


def _results(s: WorkerSettings, n: int, timeout: float = 30) -> list[SentimentResult]:
    """``n`` results as a read_committed reader sees them, and any duplicate right behind."""
    c = Consumer(
        {
            "bootstrap.servers": s.kafka_bootstrap,
            "group.id": f"r{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    c.subscribe([s.topic("results.sentiment")])
    out: list[SentimentResult] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            out += [decode(m.value(), SentimentResult) for m in c.consume(100, 0.2)]
        out += [decode(m.value(), SentimentResult) for m in c.consume(100, 1)]
    finally:
        c.close()
    return out


def _committed(s: WorkerSettings) -> int:
    return committed_total(s.kafka_bootstrap, s.group_id, s.topic("text"), 2)


def _worker(sentiment_env: dict[str, object], **extra: Any) -> WorkerSettings:
    return WorkerSettings(task="sentiment", service_name="t-faults", worker_max_batch=16,
                          **sentiment_env, **extra)  # type: ignore[arg-type]  # fmt: skip


def test_an_input_the_model_fails_on_is_dead_lettered_and_its_batch_served(
    sentiment_env: dict[str, object],
) -> None:
    s = _worker(sentiment_env)
    texts = [f"what a good day {i}" for i in range(8)]
    texts[3] = "BOOM"
    _send(s, texts)
    loop, handler = build_worker(s)
    handler.slot.current = Faulty(handler.slot.current)  # type: ignore[assignment]
    with running(loop):
        got = _results(s, 7)
        (dead,) = read_all(s.kafka_bootstrap, s.topic("text.dlq"), 1, 30)
        ok, detail = loop.health()
        assert ok, detail
    assert sorted(r.source.seq for r in got) == [0, 1, 2, 4, 5, 6, 7]
    info = DeadLetterInfo.from_kafka_headers(dead.headers())
    assert (info.error_class, info.error_message) == ("RuntimeError", "kernel failed on this input")
    assert decode(dead.value(), TextEvent).seq == 3


def test_a_model_failing_on_everything_dead_letters_nothing_is_red_and_recovers(
    sentiment_env: dict[str, object],
) -> None:
    s = _worker(sentiment_env)
    _send(s, [f"lovely weather {i}" for i in range(8)])
    loop, handler = build_worker(s)
    faulty = Faulty(handler.slot.current)
    faulty.broken = True
    handler.slot.current = faulty  # type: ignore[assignment]
    with running(loop):
        wait_for(lambda: loop.retrying is not None, 30, "health to turn red with the reason")
        ok, detail = loop.health()
        problems = " | ".join(detail["problems"])
        assert not ok and "illegal memory access" in problems and "sample input too" in problems
        assert "no input is dead-lettered" in problems
        time.sleep(2)  # retried meanwhile, after a backoff
        assert loop.dead_lettered == 0 and _committed(s) == 0
        faulty.broken = False
        got = _results(s, 8)
        wait_for(lambda: loop.health()[0], 30, "health to turn green", lambda: loop.health()[1])
    assert sorted(r.source.seq for r in got) == list(range(8)), "each once"
    assert loop.dead_lettered == 0
    assert read_all(s.kafka_bootstrap, s.topic("text.dlq"), 1, 2) == []


def test_a_model_wrong_on_every_real_input_turns_health_red_until_it_serves_again(
    sentiment_env: dict[str, object],
) -> None:
    """Fine on its sample input (so not "failing"), refused on every real one: each input is a
    dead letter, which used to leave health green while the worker served nothing."""
    s = _worker(sentiment_env)
    n = MODEL_FAULT_RUN
    _send(s, [f"WRONG {i}" for i in range(n - 1)])
    loop, handler = build_worker(s)
    handler.slot.current = Faulty(handler.slot.current)  # type: ignore[assignment]
    with running(loop):
        wait_for(lambda: loop.dead_lettered == n - 1, 30, f"{n - 1} dead letters")
        assert loop.health()[0], "fewer than MODEL_FAULT_RUN in a row: not yet a model fault"
        _send(s, ["WRONG again"], first_seq=n - 1)
        wait_for(lambda: not loop.health()[0], 30, "health to turn red")
        problem = loop.health()[1]["model_faulty"]
        assert f"invalid output for the last {n} inputs in a row" in problem
        assert "are not finite" in problem and "streamsense models rollback" in problem
        _send(s, ["a fine day"], first_seq=n)
        assert [r.source.seq for r in _results(s, 1)] == [n]
        wait_for(lambda: loop.health()[0], 30, "health green again once a result is served")
    assert len(read_all(s.kafka_bootstrap, s.topic("text.dlq"), n, 30)) == n


def test_a_hung_model_call_turns_health_red_and_a_stop_ends_in_bounded_time(
    sentiment_env: dict[str, object],
) -> None:
    s = _worker(sentiment_env, worker_model_timeout_s=2)
    _send(s, [f"fine {i}" for i in range(4)])
    loop, handler = build_worker(s)
    faulty = Faulty(handler.slot.current)
    handler.slot.current = faulty  # type: ignore[assignment]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loop.run()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        assert len(_results(s, 4)) == 4
        wait_for(lambda: _committed(s) == 4, 30, "the first four committed")
        _send(s, ["HANG here", "fine 5", "fine 6"], first_seq=4)
        wait_for(lambda: "model_stuck" in loop.health()[1], 30, "health to say the model hangs")
        assert not loop.health()[0]
        assert "over the model timeout (2 s" in loop.health()[1]["model_stuck"]
        assert any("over the model timeout" in p for p in loop.health()[1]["problems"])
        started = time.monotonic()
        loop.stop()  # what SIGTERM calls
        t.join(10)
        took = time.monotonic() - started
    finally:
        faulty.release.set()
    assert not t.is_alive() and took < 3, f"stopped after {took:.1f} s"
    assert [type(e) for e in errors] == [ModelHungError]
    assert _committed(s) == 4, "the hung batch is not committed"
    # the next owner (here without the fault) serves what the hung one could not
    loop2, _ = build_worker(s)
    with running(loop2):
        got = _results(s, 7)
    assert sorted(r.source.seq for r in got) == list(range(7)), "each once"


def test_model_caller_hands_back_results_and_errors_and_gives_up_only_when_stopping() -> None:
    caller = ModelCaller(timeout_s=0.5)
    assert caller.call(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ZeroDivisionError):
        caller.call(lambda: 1 / 0)
    release = threading.Event()
    box: list[BaseException | str] = []

    def slow() -> str:
        release.wait(30)
        return "late"

    def wait() -> None:
        try:
            box.append(caller.call(slow))
        except BaseException as exc:  # surfaced below
            box.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(1.0)  # past the timeout, not stopping: a slow call is waited for
    assert t.is_alive() and caller.running_for() > 0.5
    caller.stop()
    t.join(1.0)
    assert not t.is_alive() and isinstance(box[0], ModelHungError)
    with pytest.raises(ModelHungError):  # the model thread is still stuck
        caller.call(lambda: 1)
    release.set()
    caller.close()
