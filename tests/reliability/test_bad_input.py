"""A corpus of bad inputs (``corpus/manifest.json``) through the real workers and the Redis sink
over Kafka, on topics made from the platform's own specs: nothing crashes, every bad record
reaches its ``<topic>.dlq`` with the reason, and the good records behind them still flow."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import KafkaError, Message

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import decode, encode
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.schemas.text import TextEvent
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import ensure_topics
from streamsense.services.producers.settings import MAX_TEXT_BYTES, TextProducerSettings
from streamsense.services.producers.text import TextProducer
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.settings import StreamsenseSettings
from streamsense.services.sink.service import RedisSink
from streamsense.services.sink.settings import SinkSettings
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.settings import WorkerSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.slow]

CORPUS = Path(__file__).parent / "corpus"
MANIFEST: dict[str, Any] = json.loads((CORPUS / "manifest.json").read_text())
GOOD_JPEG = (CORPUS / "good-160x120.jpg").read_bytes()


class Threaded:
    """A service's ``run`` in a thread; ``stop()`` drains it; what it raised is kept."""

    def __init__(self, name: str, run: Any, stop: Any) -> None:
        self.name, self._stop = name, stop
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(run,), daemon=True, name=name)
        self.thread.start()

    def _run(self, run: Any) -> None:
        try:
            run()
        except BaseException as exc:
            self.errors.append(exc)

    def stop(self) -> None:
        self._stop()
        self.thread.join(60)


@contextmanager
def services(base: dict[str, Any], tag: str) -> Iterator[dict[str, Any]]:
    """The detect, segment and sentiment workers and the Redis sink, each in a thread."""
    running: dict[str, Any] = {}
    with ExitStack() as stack:
        for task in ("detect", "segment", "sentiment"):
            ws = WorkerSettings(
                task=task, service_name=f"worker-{task}", worker_group=f"{task}-{tag}", **base
            )
            loop, _ = build_worker(ws)
            t = Threaded(task, loop.run, loop.stop)
            stack.callback(t.stop)
            running[task] = (loop, t)
        sink = RedisSink(SinkSettings(redis_prefix=f"ss{tag}", sink_group=f"sink-{tag}", **base))
        t = Threaded("sink", sink.run, sink.stop)
        stack.callback(t.stop)
        running["sink"] = (sink.loop, t)
        wait_for(lambda: all(loop.assignment for loop, _ in running.values()), 60, "assignments")
        yield running


def _frame_headers(case: dict[str, Any], seq: int) -> list[tuple[str, bytes]]:
    tag = [("case", f"frames#{seq}".encode())]
    if case["headers"] is None:
        return tag
    base = FrameHeaders(
        camera_id="cam-bad", seq=seq, capture_ns=time.time_ns(), width=160, height=120,
        trace_id=f"bad{seq}",
    ).to_kafka_headers()  # fmt: skip
    over = {f"ss-{k}": v.encode() for k, v in case["headers"].items()}
    return [(k, over.get(k, v)) for k, v in base] + tag


def test_every_bad_input_is_dead_lettered_with_its_reason_and_good_ones_flow(
    stack: dict[str, str], zoo_store: Path, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    base: dict[str, Any] = {
        "kafka_bootstrap": stack["bootstrap"],
        "redis_url": stack["redis_url"],
        "topic_prefix": f"bad{tag}.",
        "model_store": zoo_store,
        "home": tmp_path,
    }
    settings = StreamsenseSettings(service_name="corpus", **base)
    ensure_topics(settings)  # the real limits: text 1 MB, frames 16 MB
    with services(base, tag) as running:
        p = Producer(settings, linger_ms=1)
        for i, case in enumerate(MANIFEST["frames"]):
            value = (CORPUS / case["file"]).read_bytes()
            p.produce(settings.topic("frames"), value, "cam-bad", _frame_headers(case, i))
        for topic in ("text", "results.detections", "results.segments", "results.sentiment"):
            for i, case in enumerate(MANIFEST[topic]):
                value = (CORPUS / case["file"]).read_bytes()
                p.produce(settings.topic(topic), value, "src-bad", [("case", f"{topic}#{i}")])
        ok = json.loads(encode(TextEvent(source_id="a", text="", ts_ns=1, seq=0, trace_id="t")))
        too_long = {**ok, "text": "y" * 100_000}  # 100 KB: past the contract's 64 KiB text
        p.produce(
            settings.topic("text"), json.dumps(too_long).encode(), "src-bad", [("case", "long")]
        )
        # what a good producer sends after the garbage must still be served
        good = FrameHeaders(
            camera_id="cam-good", seq=0, capture_ns=time.time_ns(), width=160, height=120,
            trace_id="good",
        )  # fmt: skip
        p.produce(settings.topic("frames"), GOOD_JPEG, "cam-good", good.to_kafka_headers())
        ev = TextEvent(source_id="app.log", text="what a lovely day", ts_ns=1, seq=0, trace_id="g")
        p.produce(settings.topic("text"), encode(ev), "app.log")
        assert p.flush(30) == 0 and p.failed == 0

        # 2 MB raw messages: an incompressible one is refused by the broker (the text topic's
        # 1 MB limit applies to the compressed batch); a compressible one passes it (lz4) and
        # is dead-lettered by the worker
        refused: list[KafkaError] = []
        big = Producer(settings, config={"log_level": 0})
        for value, case in ((random.randbytes(2_000_000), "random"), (b"z" * 2_000_000, "2mb")):
            big.produce(
                settings.topic("text"),
                value,
                headers=[("case", case)],
                on_delivery=lambda err, _m: refused.append(err) if err else None,
            )
        big.flush(30)
        # ... and a 2 MB line read by the text producer is cut to 64 KiB and flagged
        log = tmp_path / "big.log"
        log.write_bytes(b"great " * 350_000 + b"\nthank you, all fixed\n")
        tp = TextProducer(TextProducerSettings(service_name="text-big", **base), pattern=str(log))
        stats = tp.run()

        n_frames, n_text = len(MANIFEST["frames"]), len(MANIFEST["text"]) + 2
        frames_dlq = read_all(stack["bootstrap"], settings.topic("frames.dlq"), 2 * n_frames, 90)
        text_dlq = read_all(stack["bootstrap"], settings.topic("text.dlq"), n_text, 60)
        result_dlq = {
            t: read_all(stack["bootstrap"], settings.topic(f"{t}.dlq"), len(MANIFEST[t]), 60)
            for t in ("results.detections", "results.segments", "results.sentiment")
        }
        outputs = {
            t: _worker_output(stack["bootstrap"], settings.topic(t), len(MANIFEST[t]) + n)
            for t, n in (
                ("results.detections", 1),
                ("results.segments", 1),
                ("results.sentiment", 3),
            )
        }
        keys = RedisKeys(f"ss{tag}")
        r = redis.Redis.from_url(stack["redis_url"])
        try:
            wait_for(lambda: r.xlen(keys.stream("sentiment", "big.log")) == 2, 30, "the sink")
            wait_for(lambda: r.xlen(keys.stream("detect", "cam-good")) == 1, 30, "the sink")
        finally:
            r.close()
        for loop, t in running.values():
            assert t.thread.is_alive() and not t.errors, (t.name, t.errors)
            assert loop.health()[0], (t.name, loop.health()[1])

    assert len(refused) == 1 and refused[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert (stats.sent, stats.truncated) == (2, 1)

    _check_letters(frames_dlq, "frames", ["worker-detect", "worker-segment"])
    _check_letters(text_dlq, "text", ["worker-sentiment"])
    for topic, letters in result_dlq.items():
        _check_letters(letters, topic, ["sink-redis"])
    assert running["sink"][0].dead_lettered == sum(len(v) for v in result_dlq.values())

    (det,) = [decode(m.value(), DetectionResult) for m in outputs["results.detections"]]
    (seg,) = [decode(m.value(), SegmentResult) for m in outputs["results.segments"]]
    assert det.source_id == seg.source_id == "cam-good" and (det.width, det.height) == (160, 120)
    texts = sorted(
        (r.source_id, len(r.text))
        for r in (decode(m.value(), SentimentResult) for m in outputs["results.sentiment"])
    )
    assert texts == [("app.log", 17), ("big.log", 20), ("big.log", MAX_TEXT_BYTES)]


def _worker_output(bootstrap: str, topic: str, expect: int) -> list[Message]:
    """The workers' results on ``topic`` (the corpus' own bad records carry a case header)."""
    got = read_all(bootstrap, topic, expect, 60)
    assert len(got) == expect, (topic, len(got))
    return [m for m in got if "case" not in dict(m.headers() or [])]


def _check_letters(letters: list[Message], topic: str, services_: list[str]) -> None:
    cases = MANIFEST.get(topic, [])
    expected = len(cases) + 2 * (topic == "text")  # + the long text and the 2 MB message
    assert len(letters) == expected * len(services_), (topic, len(letters))
    seen: Counter[str] = Counter()
    for m in letters:
        headers = dict(m.headers() or [])
        info = DeadLetterInfo.from_kafka_headers(m.headers())
        assert info.service in services_
        assert info.original_topic.endswith(topic)
        seen[info.service] += 1
        case_id = headers["case"].decode()
        if case_id == "long":
            assert info.error_class == "SchemaError"
            assert "text: String should have at most 65536 characters" in info.error_message
            continue
        if case_id == "2mb":
            # over the text topic's dead-letter budget: cut to a prefix, identified by its
            # size and sha256 (it used to be copied whole, which the .dlq could refuse)
            assert m.value() == b"z" * len(m.value() or b"")
            assert 1_000_000 < len(m.value() or b"") < 1_048_576
            assert info.payload_truncated and info.original_size == 2_000_000
            assert info.original_sha256 == hashlib.sha256(b"z" * 2_000_000).hexdigest()
            assert (info.error_class, info.error_message[:24]) == (
                "SchemaError",
                "not valid JSON/UTF-8: un",
            )
            continue
        case = cases[int(case_id.split("#")[1])]
        assert m.value() in ((CORPUS / case["file"]).read_bytes(), None), "original bytes kept"
        assert info.error_class == case["error"], (case, info)
        assert case["reason"] in info.error_message, (case, info.error_message)
    assert seen == dict.fromkeys(services_, expected), seen
