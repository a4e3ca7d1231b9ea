"""Reading a record's headers when a key is not UTF-8 (:mod:`...kafka.headers`), on real
records. confluent-kafka keeps the half-built list it failed on; a second plain ``headers()``
call returned it, and a hot call site (CPython specializes it) returned it at the first call
with the exception lost. Reading that list killed the process (a segfault, seen in the sink)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Message

from streamsense.services.kafka.exceptions import UnreadableHeadersError
from streamsense.services.kafka.headers import headers_of, readable_headers
from tests.raw_headers import produce_raw

pytestmark = pytest.mark.integration

GOOD = 200  # enough calls for the interpreter to specialize the call site first


def _read(bootstrap: str, topic: str, n: int) -> list[Message]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                  "auto.offset.reset": "earliest"})  # fmt: skip
    c.subscribe([topic])
    got: list[Message] = []
    try:
        while len(got) < n:
            got += [m for m in c.consume(n, 5.0) if m.error() is None]
    finally:
        c.close()
    return got


def test_a_key_that_is_not_utf8_is_a_reason_at_every_read_never_a_crash(
    stack: dict[str, str], make_topic: Callable[..., str]
) -> None:
    topic = make_topic("raw", dlq=False)
    good = [(b"k", b"w", [(b"ok", b"2")])] * GOOD
    bad = (b"k", b"v", [(b"ok", b"1"), (b"\xff-key", b"x")])
    produce_raw(stack["bootstrap"], topic, [*good, bad])
    messages = _read(stack["bootstrap"], topic, GOOD + 1)
    seen: list[object] = []

    def read_all() -> None:  # in a thread, as the services' loops do
        for m in messages:
            for _ in range(3):  # the first read fails, and so does every later one
                try:
                    seen.append(headers_of(m))
                except UnreadableHeadersError as exc:
                    seen.append(str(exc))

    t = threading.Thread(target=read_all)
    t.start()
    t.join(60)
    assert seen[: 3 * GOOD] == [[("ok", b"2")]] * (3 * GOOD)
    assert all("a header key is not UTF-8" in str(s) for s in seen[3 * GOOD :]), seen[-3:]
    assert len(seen) == 3 * (GOOD + 1)
    last = messages[-1]
    assert readable_headers(last) == ([], False)
    assert last.value() == b"v" and last.key() == b"k", "the rest of the record reads as ever"
