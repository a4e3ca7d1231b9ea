"""Hostile text records through a real sentiment worker on the real broker: keys a producer
chose badly, hostile headers, ids that would become Redis keys or HTML, numbers out of range.

Results are keyed by the validated source id: they used to carry the input's key (null,
binary, 900 KB, another source's), so one source's results could land on several partitions
out of order and a huge key travelled into every downstream record."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import decode
from streamsense.schemas.results import SentimentResult
from streamsense.services.kafka.producer import Producer
from streamsense.services.runner import running
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.settings import WorkerSettings
from tests.kafka_helpers import read_all

pytestmark = [pytest.mark.integration, pytest.mark.models]


def _event(n: int, **over: Any) -> bytes:
    body = {"schema": "streamsense.text", "version": 1, "source_id": "app.log",
            "text": f"such a nice day {n}", "ts_ns": time.time_ns(), "seq": n,
            "trace_id": f"t{n}"}  # fmt: skip
    return orjson.dumps({**body, **over})


#: (case, value, key, extra headers) served: results keyed by the source id
SERVED: list[tuple[str, bytes, bytes | None, list[tuple[str, Any]]]] = [
    ("null key", _event(0), None, []),
    ("binary key", _event(1), b"\xff\xfe\x00", []),
    ("900 KB key", _event(2), b"k" * 900_000, []),
    ("another source's key", _event(3, source_id="real-src"), b"other-src", []),
    ("non-UTF-8 and empty headers", _event(4), b"a", [("traceparent", b"\xff\xfe"), ("x", None)]),
    ("5000 repeated headers", _event(5), b"a", [("h", b"v")] * 5000),
    ("a 900 KB header", _event(6), b"a", [("h", b"v" * 900_000)]),
    ("NULs in the text", _event(7, text="a\x00b\x00"), b"a", []),
    ("Redis key characters", _event(8, source_id="a:b*c{x}[0]"), b"a", []),
]
#: (case, value, what the dead letter says)
REFUSED: list[tuple[str, bytes, str]] = [
    ("HTML id", _event(20, source_id="<img src=x onerror=alert(1)>"), "source_id: String should"),
    ("bidi id", _event(21, source_id="ab\u202ecd"), "source_id: String should"),
    ("newline id", _event(22, source_id="a\nb"), "source_id: String should"),
    ("huge seq", _event(23).replace(b'"seq":23', b'"seq":' + b"9" * 30), "seq:"),
    ("fractional seq", _event(24, seq=1.5), "seq:"),
    ("negative ts", _event(25, ts_ns=-1), "ts_ns:"),
]


def test_hostile_text_records_are_served_keyed_by_source_or_dead_lettered(
    sentiment_env: dict[str, object],
) -> None:
    s = WorkerSettings(task="sentiment", service_name="t-hostile", **sentiment_env)  # type: ignore[arg-type]
    p = Producer(s, config={"message.max.bytes": 5_000_000})
    for case, value, key, headers in SERVED:
        p.produce(s.topic("text"), value, key=key, headers=[*headers, ("case", case)])
    for case, value, _ in REFUSED:
        p.produce(s.topic("text"), value, key=b"a", headers=[("case", case)])
    assert p.flush(30) == 0 and p.failed == 0
    loop, _ = build_worker(s)
    with running(loop):
        results = read_all(s.kafka_bootstrap, s.topic("results.sentiment"), len(SERVED), 60)
        dead = read_all(s.kafka_bootstrap, s.topic("text.dlq"), len(REFUSED), 60)
        ok, detail = loop.health()
        assert ok, detail
    got = {decode(m.value(), SentimentResult).source.seq: m for m in results}
    assert sorted(got) == list(range(len(SERVED)))
    for seq, m in got.items():
        r = decode(m.value(), SentimentResult)
        assert m.key() == r.source_id.encode(), (SERVED[seq][0], m.key()[:40])  # type: ignore[index]
    assert decode(got[7].value(), SentimentResult).text == "a\x00b\x00"
    letters = {dict(m.headers() or [])["case"].decode(): m for m in dead}  # type: ignore[union-attr]
    assert sorted(letters) == sorted(case for case, _, _ in REFUSED)
    for case, value, reason in REFUSED:
        info = DeadLetterInfo.from_kafka_headers(letters[case].headers())  # type: ignore[arg-type]
        assert info.error_class == "SchemaError" and reason in info.error_message, (case, info)
        assert letters[case].value() == value, "the original bytes"
