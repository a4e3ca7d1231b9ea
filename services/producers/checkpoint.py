"""Read positions on disk, advanced only over lines Kafka acknowledged.

One JSON document per producer (``text_checkpoint``) with an entry per file, keyed by device and
inode, holding the path, the byte position to resume at, the number of lines taken and a
fingerprint (SHA-256 of the first bytes) that must match on resume, so a reused inode or a file
replaced while the producer was down starts from 0 instead of a wrong position. Writes are
atomic (temporary file, fsync, ``os.replace``).

:class:`AckTracker` keeps, per file, the records in the order they were handed to the producer;
delivery callbacks mark them, and the committed position moves over the acknowledged prefix only
(:class:`~streamsense.services.kafka.offsets.AckedPrefix`, the batch loop's algorithm).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamsense.services.kafka.offsets import AckedPrefix
from streamsense.services.producers.exceptions import ProducerError

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024


@dataclass
class FileCheckpoint:
    path: str
    source_id: str
    position: int
    lines: int
    fp: str = ""
    fp_len: int = 0


@dataclass
class Checkpoint:
    producer_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    files: dict[str, FileCheckpoint] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    """next seq per source id"""


def fingerprint(fd: int, length: int) -> str:
    return hashlib.sha256(os.pread(fd, length, 0)).hexdigest()


class CheckpointStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Checkpoint:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Checkpoint()
        try:
            data: dict[str, Any] = orjson.loads(raw)
            return Checkpoint(
                producer_id=str(data["producer_id"]),
                files={k: FileCheckpoint(**v) for k, v in data.get("files", {}).items()},
                sources={str(k): int(v) for k, v in data.get("sources", {}).items()},
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            msg = f"checkpoint {self.path} is unreadable ({exc}); move it away to start over"
            raise ProducerError(msg) from exc

    def save(self, ckpt: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = orjson.dumps(asdict(ckpt), option=orjson.OPT_INDENT_2)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@dataclass(slots=True, eq=False)
class _Pending:
    end: int
    lines: int
    max_seq: int  # the largest seq sent for this file up to and including this record


@dataclass
class Committed:
    """What Kafka has acknowledged for one file, in send order without gaps."""

    position: int
    lines: int
    source_id: str
    path: str
    fp: str = ""
    fp_len: int = 0
    max_seq: int = -1
    pending: AckedPrefix[_Pending] = field(default_factory=AckedPrefix)
    sent_seq: int = -1


class AckTracker:
    def __init__(self) -> None:
        self.files: dict[str, Committed] = {}
        self.failed: str | None = None
        self.changed = False

    def start(self, key: str, position: int, lines: int, source_id: str, path: str) -> None:
        self.files[key] = Committed(position, lines, source_id, path)

    def add(self, key: str, end: int, lines: int, seq: int = -1) -> _Pending:
        """A record for the line ending at ``end`` was handed to the producer."""
        c = self.files[key]
        c.sent_seq = max(c.sent_seq, seq)
        entry = _Pending(end, lines, c.sent_seq)
        c.pending.add(entry)
        return entry

    def skip(self, key: str, end: int, lines: int) -> None:
        """A line that needs no record (blank): it counts as acknowledged once those before are."""
        self.done(key, self.add(key, end, lines))

    def done(self, key: str, entry: _Pending, error: object = None) -> None:
        if error is not None:
            self.failed = self.failed or str(error)
            return
        c = self.files.get(key)
        if c is None:
            return
        head = c.pending.done(entry)
        if head is not None:
            c.position, c.lines, c.max_seq = head.end, head.lines, head.max_seq
            self.changed = True

    def in_flight(self, key: str) -> int:
        c = self.files.get(key)
        return len(c.pending) if c else 0

    def forget(self, key: str) -> None:
        self.files.pop(key, None)
        self.changed = True
