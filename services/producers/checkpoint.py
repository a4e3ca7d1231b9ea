"""Read positions on disk, advanced only over lines Kafka acknowledged.

One JSON document per producer (``text_checkpoint``) with an entry per file, keyed by device and
inode, holding the path, the byte position to resume at, the number of lines taken and a
fingerprint (SHA-256 of the first bytes) that must match on resume, so a reused inode or a file
replaced while the producer was down starts from 0 instead of a wrong position. Writes are
atomic (temporary file, fsync, ``os.replace``); one process at a time holds a checkpoint
(:meth:`CheckpointStore.lock`). The file is input like any other (hand-edited,
restored from a backup, written by another version): it is validated whole on load
(:class:`_Document`), and anything wrong is a :class:`CheckpointError` naming the entry. Before,
a negative position or a list for ``files`` was a traceback, and a source id the contracts refuse
went into records.

:class:`AckTracker` keeps, per file, the records in the order they were handed to the producer;
delivery callbacks mark them, and the committed position moves over the acknowledged prefix only
(:class:`~streamsense.services.kafka.offsets.AckedPrefix`, the batch loop's algorithm).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamsense.schemas.fields import SourceId
from streamsense.services.kafka.offsets import AckedPrefix
from streamsense.services.producers.exceptions import CheckpointError

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


class _Entry(BaseModel):
    """One file's entry as stored: what :class:`FileCheckpoint` may hold."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    path: str = Field(min_length=1, max_length=4096)
    source_id: SourceId
    position: int = Field(ge=0)
    lines: int = Field(ge=0)
    fp: str = Field(default="", pattern=r"^(?:[0-9a-f]{64})?$")
    fp_len: int = Field(default=0, ge=0, le=FINGERPRINT_BYTES)


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    producer_id: str = Field(pattern=r"^[0-9a-f]{32}$")  # a uuid4 hex: it goes in record headers
    files: dict[Annotated[str, Field(pattern=r"^[0-9]+:[0-9]+$")], _Entry] = {}
    sources: dict[SourceId, Annotated[int, Field(ge=0)]] = {}


_AGAIN = "fix it, or move it away to start over (each file is then sent again from its start)"


def fingerprint(fd: int, length: int) -> str:
    return hashlib.sha256(os.pread(fd, length, 0)).hexdigest()


class CheckpointStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Hold the checkpoint for this process: two producers on one checkpoint would each
        send every line. An exclusive ``flock`` on ``<name>.lock`` beside it (the checkpoint
        itself is replaced at each write), which the kernel releases when the process ends,
        even by ``kill -9``: no stale lock to clean up. CheckpointError naming the holder's pid
        when another process holds it."""
        lock_path = self.path.with_name(f"{self.path.name}.lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).strip()
            os.close(fd)
            who = f" (pid {int(holder)})" if holder.isdigit() else ""
            msg = (
                f"checkpoint {self.path} is in use by another producer{who}: two producers on "
                "one checkpoint send every line twice; stop that one, or give this one its own "
                "--checkpoint"
            )
            raise CheckpointError(msg) from None
        except OSError as exc:  # a file system without locks
            os.close(fd)
            raise self._unwritable(exc) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        """Let the next producer take the checkpoint (the lock file stays: removing it would
        let a producer waiting on the old file and one creating a new file both hold "it")."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _unwritable(self, exc: OSError) -> CheckpointError:
        msg = (
            f"cannot write the checkpoint {self.path}: {exc.strerror or exc}; give a writable "
            "--checkpoint (or STREAMSENSE_HOME)"
        )
        return CheckpointError(msg)

    def load(self) -> Checkpoint:
        """The checkpoint on disk (an empty one when there is none); CheckpointError naming the
        entry when it is not JSON or not a valid checkpoint."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Checkpoint()
        except OSError as exc:
            msg = f"checkpoint {self.path} cannot be read: {exc.strerror or exc}; {_AGAIN}"
            raise CheckpointError(msg) from exc
        try:
            doc = _Document.model_validate(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            msg = f"checkpoint {self.path} is invalid: not JSON ({exc}); {_AGAIN}"
            raise CheckpointError(msg) from exc
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in err["loc"])
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            what = f"{where}: {err['msg']}" if where else err["msg"]
            msg = f"checkpoint {self.path} is invalid: {what}{more}; {_AGAIN}"
            raise CheckpointError(msg) from exc
        return Checkpoint(
            producer_id=doc.producer_id,
            files={k: FileCheckpoint(**e.model_dump()) for k, e in doc.files.items()},
            sources=dict(doc.sources),
        )

    def save(self, ckpt: Checkpoint) -> None:
        """Write atomically; CheckpointError naming the file when it cannot be written (a
        read-only place, a full disk): before, a bare ``FileNotFoundError: '.../.x.tmp'``."""
        data = orjson.dumps(asdict(ckpt), option=orjson.OPT_INDENT_2)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
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
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)  # a disk that filled up mid-write
            raise self._unwritable(exc) from exc


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
