"""Fetched record batches that a header key that is not UTF-8 cannot break.

Kafka's wire format lets a header key be any bytes. aiokafka decodes every key as UTF-8 while
its fetcher unpacks a batch, so one such key raised ``UnicodeDecodeError`` out of the
consumer: the app crashed, and crashed again on every restart (the record is read again), all
analytics down for one record that any client with write access can send.

:func:`install` makes the fetcher read batches through :class:`LenientRecords`: aiokafka's own
(C) reader first, and for a batch it fails on so, the same bytes again through aiokafka's
pure-Python reader with those keys decoded with U+FFFD, from the record it failed on. The
records then go on like any other: the analytics app reads no header, and a dead letter of
such a record carries the replaced key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiokafka.consumer.fetcher as fetcher
from aiokafka.record.default_records import _DefaultRecordBatchPy
from aiokafka.record.memory_records import _MemoryRecordsPy

#: Where the v2 batch format keeps its magic byte (after base offset, length, leader epoch).
_MAGIC_OFFSET = 16


class _Lenient(bytes):
    """A slice whose ``decode`` replaces what is not valid in the encoding."""

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:  # noqa: ARG002
        return bytes.decode(self, encoding, "replace")


class _LenientBuffer(bytearray):
    """A record buffer whose slices decode leniently (header keys are ``slice.decode()``)."""

    def __getitem__(self, index: Any) -> Any:
        got = super().__getitem__(index)
        return _Lenient(got) if isinstance(index, slice) else got


class _Batch:
    """One v2 batch: aiokafka's reader, then the lenient one if a header key fails."""

    def __init__(self, batch: Any, raw: memoryview) -> None:
        self._batch, self._raw = batch, raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __next__(self) -> Any:  # a control batch's marker (not records with headers)
        return next(self._batch)

    def __iter__(self) -> Iterator[Any]:
        done = 0
        try:
            for record in self._batch:
                done += 1
                yield record
        except UnicodeDecodeError:
            again = _DefaultRecordBatchPy(bytes(self._raw))
            records = iter(again)  # decompresses the records into ``again._buffer``
            again._buffer = _LenientBuffer(again._buffer)  # noqa: SLF001
            for i, record in enumerate(records):
                if i >= done:
                    yield record


class LenientRecords:
    """aiokafka's ``MemoryRecords`` for the fetcher, each v2 batch read as :class:`_Batch`."""

    def __init__(self, data: bytes) -> None:
        self._records = _MemoryRecordsPy(data)

    def size_in_bytes(self) -> int:
        return self._records.size_in_bytes()

    def has_next(self) -> bool:
        return self._records.has_next()

    def next_batch(self) -> Any:
        raw = self._records._next_slice  # noqa: SLF001 - the bytes of the batch read next
        batch = self._records.next_batch()
        if batch is None or raw is None or raw[_MAGIC_OFFSET] < 2:
            return batch  # nothing left, or an old-format batch (no headers)
        return _Batch(batch, raw)


def install() -> None:
    """Make aiokafka's fetcher (in this process) read batches as :class:`LenientRecords`."""
    fetcher.MemoryRecords = LenientRecords
