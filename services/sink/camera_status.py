"""Camera statuses (the compacted ``cameras.status`` topic) into Redis.

A status is an idempotent upsert of the camera's newest state, so it needs none of the
positions machinery that makes results exactly-once (:mod:`~streamsense.services.sink.writer`):
written twice, or replayed after a crash, it leaves the same hash field behind, and records of
one camera (one key, one partition) arrive in order, so the last write is the newest status.
A tombstone (no value) forgets the camera. Redis outages are waited out like the results' (the
same backoff, health red meanwhile); only a record that breaks the contract is dead-lettered.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis
from confluent_kafka import Message

from streamsense.schemas.cameras import CameraStatus
from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.fields import source_id_problem
from streamsense.schemas.registry import decode_wire
from streamsense.services.kafka.dlq import where
from streamsense.services.sink.writer import RedisWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StatusItem:
    camera_id: str
    value: bytes | None  # None: a tombstone, the camera is forgotten


def parse_status(m: Message) -> StatusItem:
    """The record's key is the camera id and must be the status' own ``camera_id`` (compaction
    keeps the newest record per key: a mismatch would file one camera's state under another);
    SchemaError, naming ``topic[partition]@offset``, for anything else."""
    key = m.key()
    try:
        camera = key.decode("utf-8") if isinstance(key, bytes) else key
    except UnicodeDecodeError as exc:
        msg = f"{where(m)}: the key of a camera status is not UTF-8"
        raise SchemaError(msg) from exc
    why = "is missing" if camera is None else source_id_problem(camera)
    if why or camera is None:
        msg = f"{where(m)}: a camera status needs the camera id as its key, which {why}"
        raise SchemaError(msg)
    value = m.value()
    if value is None:
        return StatusItem(camera, None)
    try:
        status, value = decode_wire(value, CameraStatus)  # store what was validated
    except SchemaError as exc:
        msg = f"{where(m)}: {exc}"
        raise SchemaError(msg) from exc
    if status.camera_id != camera:
        msg = f"{where(m)}: key {camera!r} but the status is of camera {status.camera_id!r}"
        raise SchemaError(msg)
    return StatusItem(camera, value)


class StatusWriter:
    """Writes a batch's statuses in one pipeline through the results writer's outage policy."""

    def __init__(self, writer: RedisWriter) -> None:
        self.writer = writer

    def write(self, items: list[tuple[int, StatusItem]]) -> list[tuple[int, Exception]]:
        """The newest status per camera of the batch, applied; the items Redis refused."""
        newest: dict[str, tuple[int, StatusItem]] = {}
        for i, it in items:
            newest[it.camera_id] = (i, it)
        return self.writer.until_written(lambda: self._attempt(list(newest.values())))

    def _attempt(self, items: list[tuple[int, StatusItem]]) -> list[tuple[int, Exception]]:
        client: redis.Redis = self.writer.redis
        layout = self.writer.layout
        owners: list[int] = []
        now_ms = time.time_ns() // 1_000_000
        with client.pipeline(transaction=False) as pipe:
            for i, it in items:
                owners += [i] * layout.camera_status(
                    pipe, it.camera_id, it.value, written_ms=now_ms
                )
            replies = self.writer.execute(pipe)
        return [
            (owner, reply)
            for owner, reply in zip(owners, replies, strict=True)
            if isinstance(reply, Exception)
        ]
