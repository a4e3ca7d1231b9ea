"""Fetched batches with header keys that are not UTF-8 (:mod:`...analytics.records`), built
with aiokafka's own record builder: every record comes out, in order, none lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from aiokafka.record.memory_records import MemoryRecords
from confluent_kafka import Producer

from streamsense.services.analytics import records
from streamsense.services.analytics.records import LenientRecords
from tests.raw_headers import produce_raw


class RawKey(str):
    """A header key whose wire bytes are ``raw`` (the builder writes ``key.encode()``)."""

    raw: bytes

    def __new__(cls, raw: bytes) -> RawKey:
        self = super().__new__(cls, "raw")
        self.raw = raw
        return self

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:  # noqa: ARG002
        return self.raw


def _batch(base: int, codec: int, headers: list[list[tuple[str, bytes]]]) -> bytes:
    b = _DefaultRecordBatchBuilderPy(2, codec, 0, -1, -1, -1, 1 << 20)
    for i, hs in enumerate(headers):
        b.append(i, None, f"k{base + i}".encode(), f"v{base + i}".encode(), hs)  # type: ignore[arg-type]
    data = b.build()
    data[0:8] = base.to_bytes(8, "big")  # the base offset the broker would give
    return bytes(data)


@pytest.mark.parametrize("codec", [0, 1, 4], ids=["plain", "gzip", "zstd"])
def test_every_record_comes_out_and_the_bad_keys_read_with_replacement(codec: int) -> None:
    bad = [(RawKey(b"\xff\xfe-key"), b"x")]
    data = _batch(0, codec, [[("a", b"1")], bad, [], bad]) + _batch(4, codec, [[("b", b"2")]])
    with pytest.raises(UnicodeDecodeError):  # aiokafka alone: the whole fetch fails
        records = MemoryRecords(data)
        while records.has_next():
            batch = records.next_batch()
            assert batch is not None
            list(batch)
    got = []
    lenient = LenientRecords(data)
    assert lenient.size_in_bytes() == len(data)
    while lenient.has_next():
        batch = lenient.next_batch()
        assert batch.validate_crc() and not batch.is_control_batch
        got += [(r.offset, r.value, r.headers) for r in batch]
    assert [(o, v) for o, v, _ in got] == [(i, f"v{i}".encode()) for i in range(5)]
    assert [h for _, _, h in got] == [
        [("a", b"1")], [("\ufffd\ufffd-key", b"x")], [], [("\ufffd\ufffd-key", b"x")],
        [("b", b"2")],
    ]  # fmt: skip


@pytest.mark.integration
def test_read_committed_through_the_lenient_reader_skips_aborted_records(
    stack: dict[str, str], make_topic: Callable[..., str]
) -> None:
    """Control batches (commit and abort markers) go through the wrapper too: the fetcher reads
    a marker with ``next(batch)``, outside the records' iteration."""
    topic = make_topic("lenient", dlq=False)
    p = Producer({"bootstrap.servers": stack["bootstrap"], "transactional.id": f"tx-{topic}"})
    p.init_transactions(30)
    for i in range(3):
        p.begin_transaction()
        p.produce(topic, f"c{i}".encode(), headers=[("h", b"v")])
        if i == 1:
            p.flush(10)
            p.abort_transaction(10)
        else:
            p.commit_transaction(10)
    produce_raw(stack["bootstrap"], topic, [(None, b"raw", [(b"\xff", b"x")])])
    records.install()

    async def read() -> list[tuple[bytes | None, Any]]:
        c = AIOKafkaConsumer(topic, bootstrap_servers=stack["bootstrap"],
                             isolation_level="read_committed", auto_offset_reset="earliest",
                             group_id=f"g-{topic}")  # fmt: skip
        await c.start()
        got: list[tuple[bytes | None, Any]] = []
        try:
            for _ in range(30):
                for msgs in (await c.getmany(timeout_ms=1000)).values():
                    got += [(m.value, list(m.headers)) for m in msgs]
                if len(got) >= 3:  # noqa: PLR2004
                    break
        finally:
            await c.stop()
        return got

    assert asyncio.run(read()) == [
        (b"c0", [("h", b"v")]), (b"c2", [("h", b"v")]), (b"raw", [("\ufffd", b"x")])
    ]  # fmt: skip
