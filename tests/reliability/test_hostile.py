"""The regression corpus of issue 14: each hostile record class through the real workers, the
real Redis sink and the real broker, on topics made from the platform's spec. For each: the
services are still running and healthy, the dead letter carries its reason (and, when cut to
fit, its original size and sha256), and the next good record is served all the way to Redis.
The classes' builders are the product's own (:mod:`streamsense.services.bench.poison`), shared
with ``streamsense bench hostile``; ``test_bad_input.py`` runs the older corpus."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from confluent_kafka import KafkaError, Message

from streamsense.schemas.catalog import FRAME_MAX_BYTES, FRAME_MAX_PIXELS
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import encode
from streamsense.schemas.text import TextEvent
from streamsense.services.bench import poison
from streamsense.services.kafka.dlq import record_size
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import dead_letter_budget, ensure_topics
from streamsense.services.producers.settings import MAX_TEXT_BYTES, TextProducerSettings
from streamsense.services.producers.text import TextProducer
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.raw_headers import produce_raw
from tests.reliability.conftest import TopicReader
from tests.reliability.test_bad_input import GOOD_JPEG, services

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.slow]


@dataclass
class Plane:
    settings: StreamsenseSettings
    base: dict[str, Any]
    running: dict[str, Any]
    keys: RedisKeys
    redis: redis.Redis

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    def send(self, topic: str, value: bytes, key: str, headers: list[Any], **producer: Any) -> None:
        p = Producer(self.settings, linger_ms=1, **producer)
        errors: list[KafkaError] = []
        p.produce(self.topic(topic), value, key, headers,
                  on_delivery=lambda err, _m: errors.append(err) if err else None)  # fmt: skip
        assert p.flush(30) == 0 and not errors, errors
        p.close(5)

    def good_frame(self, camera: str) -> None:
        self.send("frames", GOOD_JPEG, camera, poison.frame_headers(camera, 0, 160, 120))
        for task in ("detect", "segment"):
            key = self.keys.latest(task, camera)
            wait_for(lambda k=key: self.redis.exists(k), 90, f"the {task} result of {camera}")

    def good_text(self, source: str) -> None:
        ev = TextEvent(source_id=source, text="all good", ts_ns=time.time_ns(), seq=0, trace_id="g")
        self.send("text", encode(ev), source, [])
        key = self.keys.latest("sentiment", source)
        wait_for(lambda: self.redis.exists(key), 60, f"the sentiment result of {source}")

    def letters(
        self, topic: str, case: str, n: int, timeout: float = 60, key: bytes | None = None
    ) -> list[Message]:
        """The dead letters of the records sent with header ``case`` (or with ``key``): ``n``
        of them, no more (read on for a second after the ``n``-th, to see any extra)."""
        reader = TopicReader(self.settings.kafka_bootstrap, self.topic(f"{topic}.dlq"), 1,
                             {"fetch.max.bytes": 64 << 20})  # fmt: skip

        def mine() -> list[Message]:
            if key is not None:
                return [m for m in reader.messages if m.key() == key]
            return [
                m for m in reader.messages if dict(m.headers() or []).get("case") == case.encode()
            ]

        try:
            deadline = time.monotonic() + timeout
            while len(mine()) < n and time.monotonic() < deadline:
                reader.poll(0.5)
            reader.poll(1.0)
        finally:
            reader.close()
        got = mine()
        assert len(got) == n, (case, len(got))
        return got

    def all_alive(self) -> None:
        for name, (loop, thread) in self.running.items():
            assert thread.thread.is_alive() and not thread.errors, (name, thread.errors)
            ok, detail = loop.health()
            assert ok, (name, detail)


@pytest.fixture(scope="module")
def plane(stack: dict[str, str], zoo_store: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Plane]:  # fmt: skip
    tag = uuid.uuid4().hex[:8]
    base: dict[str, Any] = {
        "kafka_bootstrap": stack["bootstrap"],
        "redis_url": stack["redis_url"],
        "topic_prefix": f"hostile{tag}.",
        "model_store": zoo_store,
        "home": tmp_path_factory.mktemp("hostile"),
    }
    settings = StreamsenseSettings(service_name="hostile", **base)
    ensure_topics(settings)
    client = redis.Redis.from_url(stack["redis_url"])
    try:
        with services(base, tag) as running:
            yield Plane(settings, base, running, RedisKeys(f"ss{tag}"), client)
    finally:
        client.close()


def _cut(letter: Message, original: bytes, budget: int) -> DeadLetterInfo:
    """The dead letter was cut to fit: a prefix, the original's size and sha256, in budget."""
    info = DeadLetterInfo.from_kafka_headers(letter.headers())
    value = letter.value() or b""
    assert info.payload_truncated
    assert info.original_size == len(original)
    assert info.original_sha256 == hashlib.sha256(original).hexdigest()
    assert original.startswith(value) and len(value) > budget // 2
    headers = [(k, v or b"") for k, v in letter.headers() or []]
    assert record_size(letter.key(), value, headers) <= budget
    return info


def test_text_that_grows_when_recompressed_is_cut_to_fit_its_dead_letter_topic(
    plane: Plane,
) -> None:
    payload = poison.grows_when_recompressed()
    refused: list[KafkaError] = []
    lz4 = Producer(plane.settings, compression="lz4", config={"log_level": 0})
    lz4.produce(plane.topic("text"), payload,
                on_delivery=lambda err, _m: refused.append(err) if err else None)  # fmt: skip
    lz4.flush(30)
    lz4.close(5)
    assert [e.code() for e in refused] == [KafkaError.MSG_SIZE_TOO_LARGE], "lz4 does not fit"
    plane.send("text", payload, "src-grows", [("case", b"grows")], compression="zstd")
    plane.good_text("good-after-grows")
    (letter,) = plane.letters("text", "grows", 1)
    info = _cut(letter, payload, dead_letter_budget(plane.topic("text")))
    assert (info.error_class, info.service) == ("SchemaError", "worker-sentiment")
    assert letter.key() == b"src-grows" and info.original_topic == plane.topic("text")
    plane.all_alive()


def test_a_huge_frame_that_is_not_a_jpeg_is_cut_to_fit(plane: Plane) -> None:
    payload = poison.huge_non_jpeg()
    headers = [*poison.frame_headers("cam-huge", 0, 1280, 720), ("case", b"huge")]
    plane.send("frames", payload, "cam-huge", headers, compression="lz4",
               config={"message.max.bytes": 2 * FRAME_MAX_BYTES})  # fmt: skip
    plane.good_frame("good-after-huge")
    letters = plane.letters("frames", "huge", 2)
    budget = dead_letter_budget(plane.topic("frames"))
    infos = [_cut(m, payload, budget) for m in letters]
    assert {i.service for i in infos} == {"worker-detect", "worker-segment"}
    for info in infos:
        assert info.error_class == "BadFrameError"
        assert f"exceeds the {FRAME_MAX_BYTES}-byte limit" in info.error_message
    plane.all_alive()


@pytest.mark.parametrize(
    ("camera", "width", "height", "reason"),
    [
        ("bomb-over", 20000, 20000, f"over the {FRAME_MAX_PIXELS}-pixel limit"),
        ("bomb-dense", 8192, 8192, "a decompression bomb or a cut-off image"),
    ],
)
def test_sof_bombs_reach_the_dlq_and_the_sink_makes_no_thumbnail(
    plane: Plane, camera: str, width: int, height: int, reason: str
) -> None:
    bomb = poison.sof_bomb(width, height)
    assert len(bomb) < 4096
    # the headers may say anything: the JPEG's own frame header is what is checked first
    headers = [*poison.frame_headers(camera, 0, 1280, 720), ("case", camera.encode())]
    plane.send("frames", bomb, camera, headers)
    for m in plane.letters("frames", camera, 2):
        info = DeadLetterInfo.from_kafka_headers(m.headers())
        assert info.error_class == "BadFrameError" and reason in info.error_message
        assert m.value() == bomb and not info.payload_truncated
    assert not plane.redis.exists(plane.keys.thumb(camera)), "the sink decoded nothing"
    # the same camera's next, good frame: results and a thumbnail (the sink still serves)
    headers = poison.frame_headers(camera, 1, 160, 120)
    plane.send("frames", GOOD_JPEG, camera, headers)
    thumb_meta = plane.keys.thumb_meta(camera)
    wait_for(lambda: plane.redis.hget(thumb_meta, "seq") == b"1", 60, "the good frame's thumbnail")
    for task in ("detect", "segment"):
        key = plane.keys.latest(task, camera)
        wait_for(lambda k=key: plane.redis.exists(k), 90, f"{task} of the good frame")
    plane.all_alive()


def test_a_stale_poison_frame_is_dead_lettered_not_skipped(plane: Plane) -> None:
    detect = plane.running["detect"][0].handler
    stale_before = detect.stale
    hour = 3600.0
    bad = poison.stale_poison()
    plane.send("frames", bad, "cam-old", [*poison.frame_headers("cam-old", 0, 64, 64, hour),
                                          ("case", b"stale-poison")])  # fmt: skip
    plane.send("frames", GOOD_JPEG, "cam-old-good",
               [*poison.frame_headers("cam-old-good", 0, 160, 120, hour),
                ("case", b"stale-good")])  # fmt: skip
    plane.good_frame("good-after-stale")
    for m in plane.letters("frames", "stale-poison", 2):
        info = DeadLetterInfo.from_kafka_headers(m.headers())
        assert (info.error_class, m.value()) == ("BadFrameError", bad)
        assert "truncated JPEG" in info.error_message
    wait_for(lambda: detect.stale > stale_before, 30, "the old good frame skipped as stale")
    plane.letters("frames", "stale-good", 0, timeout=0)
    assert not plane.redis.exists(plane.keys.latest("detect", "cam-old-good"))
    plane.all_alive()


def test_a_giant_line_is_served_truncated_and_the_next_line_after_it(
    plane: Plane, tmp_path: Path
) -> None:
    log = tmp_path / "giant.log"
    log.write_bytes(poison.giant_line(20_000_000) + b"\nthe line after it\n")
    settings = TextProducerSettings(service_name="text-giant", **plane.base)
    stats = TextProducer(settings, pattern=str(log)).run()
    assert (stats.sent, stats.truncated) == (2, 1)
    stream = plane.keys.stream("sentiment", "giant.log")
    wait_for(lambda: plane.redis.xlen(stream) == 2, 60, "both lines' results")
    latest = plane.redis.hget(plane.keys.latest("sentiment", "giant.log"), "json") or b""
    assert b"the line after it" in latest
    first = orjson.loads(plane.redis.xrange(stream, count=1)[0][1][b"json"])
    assert first["text"] == poison.giant_line(20_000_000)[:MAX_TEXT_BYTES].decode()
    plane.all_alive()


def test_header_keys_that_are_not_utf8_are_dead_letters_not_crashes(plane: Plane) -> None:
    """Kafka lets a header key be any bytes; confluent-kafka raised ``SystemError`` reading
    one. Before: a frame with such a key crashed the vision workers and the sink's thumbnail
    step, and dead-lettering any such record crashed again (the letter copies the headers)."""
    raw = (b"\xff\xfe-key", b"x")
    bootstrap = plane.settings.kafka_bootstrap
    camera = "cam-rawkey"
    frame = [(k.encode(), v) for k, v in poison.frame_headers(camera, 0, 160, 120)]
    produce_raw(bootstrap, plane.topic("frames"), [(camera.encode(), GOOD_JPEG, [*frame, raw])])
    text = encode(TextEvent(source_id="txt-rawkey", text="fine words", ts_ns=time.time_ns(),
                            seq=0, trace_id="r"))  # fmt: skip
    records = [(b"txt-rawkey", text, [raw]), (b"txt-rawkey-bad", b"{not json", [raw])]
    produce_raw(bootstrap, plane.topic("text"), records)
    for m in plane.letters("frames", "", 2, key=camera.encode()):  # detector's and segmenter's
        info = DeadLetterInfo.from_kafka_headers(m.headers())
        assert info.error_class == "UnreadableHeadersError", info
        assert "a header key is not UTF-8" in info.error_message
        assert info.headers_unreadable and m.value() == GOOD_JPEG
    [bad] = plane.letters("text", "", 1, key=b"txt-rawkey-bad")
    info = DeadLetterInfo.from_kafka_headers(bad.headers())
    assert info.error_class == "SchemaError" and info.headers_unreadable, info
    assert bad.value() == b"{not json"
    # the sentiment worker needs no header of a text record: that one is served
    wait_for(lambda: plane.redis.exists(plane.keys.latest("sentiment", "txt-rawkey")), 60,
             "the text record with the odd header key served")  # fmt: skip
    assert not plane.redis.exists(plane.keys.thumb(camera)), "no thumbnail from unread headers"
    plane.good_frame(camera)  # the same camera's next frame: served, with its thumbnail
    thumb_meta = plane.keys.thumb_meta(camera)
    wait_for(lambda: plane.redis.hget(thumb_meta, "seq") == b"0", 60, "the good frame's thumbnail")
    plane.all_alive()
