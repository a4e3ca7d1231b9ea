"""The text producer: lines from followed files (or stdin) -> ``TextEvent`` -> ``text``.

- One event per line; ``source_id`` is the file name (or ``--source-id``); ``seq`` grows per
  source across restarts; ``path`` and ``position`` (byte offset of the line) are set.
- Whitespace-only lines are skipped and counted (``blank``).
- Over-long lines keep their first ``text_max_line_bytes`` bytes and get the flag ``truncated``;
  invalid UTF-8 is replaced (U+FFFD) and flagged ``invalid-utf8-replaced``.
- With ``json_field`` a line that is not a JSON object with that string field goes to
  ``<topic>.dlq``: value = the line's bytes, headers =
  :class:`~streamsense.schemas.dlq.DeadLetterInfo` with ``original_partition = -1`` (it never
  reached a partition) and ``original_offset`` = the line's byte position in its file, plus
  ``ss-src-path``.
- File positions are checkpointed only over acknowledged lines, and reconciled with the topic at
  start (see :mod:`streamsense.services.producers.reconcile`), so a restart neither loses nor
  repeats lines.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

from confluent_kafka import KafkaError, Message

from streamsense.schemas.catalog import dlq_topic
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import encode
from streamsense.schemas.text import TextEvent
from streamsense.services.kafka.exceptions import DeliveryFailedError
from streamsense.services.kafka.producer import BackpressurePolicy, DeliveryCallback, Producer
from streamsense.services.observability import metrics
from streamsense.services.producers import reconcile
from streamsense.services.producers.checkpoint import (
    AckTracker,
    Checkpoint,
    CheckpointStore,
    FileCheckpoint,
    fingerprint,
)
from streamsense.services.producers.exceptions import LineError, SourceError
from streamsense.services.producers.lines import (
    INVALID_UTF8,
    TRUNCATED,
    LineSplitter,
    RawLine,
    line_text,
)
from streamsense.services.producers.settings import TextProducerSettings
from streamsense.services.producers.tail import CHUNK, ChangeWatcher, Resume, TailedFile, Tailer

log = logging.getLogger(__name__)

#: log the first few flagged lines, then every Nth, so a binary file does not flood the log
_LOG_FIRST, _LOG_EVERY = 10, 1000


@dataclass
class TextStats:
    lines: int = 0
    sent: int = 0
    blank: int = 0
    truncated: int = 0
    invalid_utf8: int = 0
    dlq: int = 0
    files: int = 0
    rotations: int = 0
    truncations: int = 0


class TextProducer:
    def __init__(
        self,
        settings: TextProducerSettings,
        *,
        pattern: str | None = None,
        stdin: BinaryIO | None = None,
        follow: bool = False,
        json_field: str | None = None,
        source_id: str | None = None,
        producer: Producer | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        if (pattern is None) == (stdin is None):
            msg = "give either a path glob or stdin"
            raise ValueError(msg)
        self.settings = settings
        self.pattern = pattern
        self.stdin = stdin
        self.follow = follow
        self.json_field = json_field
        self.source_id = source_id
        self.topic = settings.topic_name
        self.producer = producer or Producer(
            settings, policy=BackpressurePolicy.BLOCK, max_in_flight=settings.text_max_in_flight
        )
        self.stop_event = stop or threading.Event()
        self.stats = TextStats()
        self.tracker = AckTracker()
        self.store: CheckpointStore | None = None
        self.ckpt = Checkpoint()
        self.tailer: Tailer | None = None
        self._seq: dict[str, int] = {}
        self._orphans: set[str] = set()
        self._last_save = 0.0
        self._service = settings.service_name
        self._dlq_topic = dlq_topic(self.topic)

    # -- observability ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, int | float | str]:
        if self.tailer is not None:
            self.stats.files = len(self.tailer.files)
            self.stats.rotations = self.tailer.rotations
            self.stats.truncations = self.tailer.truncations
        p = self.producer
        return {**asdict(self.stats), "acked": p.acked, "failed": p.failed,
                "in_flight": p.in_flight}  # fmt: skip

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.tracker.failed is None, self.snapshot()

    # -- run ----------------------------------------------------------------------------------

    def run(self) -> TextStats:
        try:
            if self.stdin is not None:
                self._run_stdin(self.stdin)
            else:
                self._run_files()
        finally:
            left = self.producer.flush(self.settings.text_flush_timeout_s)
            if left:
                log.error("%d lines not acknowledged at exit: they are sent again next time", left)
            if self.store is not None:
                self._save(force=True)  # only acknowledged lines are in it, even after a failure
            if self.tailer is not None:
                self.tailer.close()
        if self.tracker.failed is not None or self.producer.failed:
            msg = (
                f"Kafka refused {self.producer.failed} line(s): {self.tracker.failed or 'see log'}"
            )
            raise DeliveryFailedError(msg)
        return self.stats

    def _run_files(self) -> None:
        assert self.pattern is not None
        s = self.settings
        self.store = CheckpointStore(s.checkpoint_path(self.pattern, self.source_id))
        self.ckpt = self.store.load()
        found = reconcile.scan(s, [self.topic, self._dlq_topic], self.ckpt.producer_id,
                               s.text_reconcile_scan)  # fmt: skip
        if reconcile.apply(self.ckpt, found):
            log.info("reconciled the checkpoint with %s: no line is sent twice", self.topic)
        self._seq = dict(self.ckpt.sources)
        self.store.save(self.ckpt)  # the producer id must be on disk before the first record
        self.tailer = Tailer(self.pattern, max_line_bytes=s.text_max_line_bytes,
                             follow=self.follow, grace_s=s.text_rotate_grace_s,
                             source_id=self.source_id, resume=self._resume,
                             on_close=self._closed)  # fmt: skip
        self._scan()
        if not self.tailer.files and not self.follow:
            msg = f"no file matches {self.pattern}"
            raise SourceError(msg)
        self._drop_stale_entries()
        changed = threading.Event()
        watcher = ChangeWatcher(self.pattern, changed).start() if self.follow else None
        last_scan = time.monotonic()
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if self.follow and (changed.is_set() or now - last_scan >= s.text_poll_interval_s):
                    changed.clear()
                    self._scan()
                    last_scan = now
                batch = self.tailer.read()
                for f, raw in batch:
                    self._emit(f, raw)
                self._served()
                if batch:
                    continue
                if not self.follow and not self.tailer.files:
                    break
                if self.producer.in_flight:
                    self.producer.poll(0.05)
                else:
                    changed.wait(min(0.2, s.text_poll_interval_s))
        finally:
            if watcher is not None:
                watcher.stop()

    def _run_stdin(self, stream: BinaryIO) -> None:
        source = self.source_id or "stdin"
        splitter = LineSplitter(self.settings.text_max_line_bytes)
        fd = stream.fileno()
        while not self.stop_event.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                self.producer.poll(0)
                continue
            data = os.read(fd, CHUNK)
            if not data:
                last = splitter.finish()
                if last is not None:
                    self._emit_line(None, source, last)
                break
            for raw in splitter.feed(data):
                self._emit_line(None, source, raw)
            self._served()

    def _served(self) -> None:
        self.producer.poll(0)
        if self.tracker.failed is not None:
            self.stop_event.set()
        elif self.store is not None:
            self._save()

    # -- lines -> records ---------------------------------------------------------------------

    def _emit(self, f: TailedFile, raw: RawLine) -> None:
        f.lines += 1
        self._emit_line(f, f.source_id, raw)

    def _emit_line(self, f: TailedFile | None, source: str, raw: RawLine) -> None:
        st = self.stats
        st.lines += 1
        if not raw.truncated and not raw.data.strip():
            st.blank += 1
            metrics.SKIPPED.labels(self._service, "blank-line").inc()
            if f is not None:
                self.tracker.skip(f.key, raw.end, f.lines)
            return
        where = f"{f.path if f else source}@{raw.start}"
        try:
            lt = line_text(raw, self.json_field)
        except LineError as exc:
            self._dead_letter(f, source, raw, exc, where)
            return
        if TRUNCATED in lt.flags:
            st.truncated += 1
            self._flagged(st.truncated, "%s: line of %d bytes truncated to %d", where, raw.length,
                          len(raw.data))  # fmt: skip
        if INVALID_UTF8 in lt.flags:
            st.invalid_utf8 += 1
            self._flagged(st.invalid_utf8, "%s: invalid UTF-8 replaced", where)
        seq = self._seq.get(source, 0)
        self._seq[source] = seq + 1
        event = TextEvent(source_id=source, text=lt.text, ts_ns=time.time_ns(), seq=seq,
                          trace_id=uuid.uuid4().hex, path=f.path if f else None,
                          position=raw.start, flags=lt.flags)  # fmt: skip
        headers = self._headers(f, raw, seq)
        self.producer.produce(self.topic, encode(event), key=source, headers=headers,
                              on_delivery=self._on_delivery(f, raw, seq))  # fmt: skip
        st.sent += 1

    def _dead_letter(
        self, f: TailedFile | None, source: str, raw: RawLine, exc: LineError, where: str
    ) -> None:
        info = DeadLetterInfo.describe(
            exc, topic=self.topic, partition=-1, offset=raw.start, service=self._service
        )
        headers: list[tuple[str, bytes | str]] = [*info.to_kafka_headers(),
                                                  *self._headers(f, raw, -1)]  # fmt: skip
        if f is not None:
            headers.append((reconcile.PATH_HEADER, f.path.encode()))
        self.stats.dlq += 1
        metrics.DLQ_TOTAL.labels(self._service, self.topic, info.error_class).inc()
        self._flagged(self.stats.dlq, "%s -> %s: %s: %s", where, self._dlq_topic,
                      info.error_class, info.error_message)  # fmt: skip
        self.producer.produce(self._dlq_topic, raw.data, key=source, headers=headers,
                              on_delivery=self._on_delivery(f, raw, -1))  # fmt: skip

    def _headers(self, f: TailedFile | None, raw: RawLine, seq: int) -> list[tuple[str, bytes]]:
        if f is None:
            return []
        return [reconcile.src_header(self.ckpt.producer_id, f.key, f.lines, raw.end, seq)]

    def _on_delivery(self, f: TailedFile | None, raw: RawLine, seq: int) -> DeliveryCallback | None:
        if f is None:
            return None
        key, entry, tracker = f.key, self.tracker.add(f.key, raw.end, f.lines, seq), self.tracker
        account = self.producer.account

        def done(err: KafkaError | None, msg: Message) -> None:
            tracker.done(key, entry, err)
            account(str(msg.topic()), err is None, err is not None)

        return done

    @staticmethod
    def _flagged(count: int, fmt: str, *args: object) -> None:
        if count <= _LOG_FIRST or count % _LOG_EVERY == 0:
            log.warning(fmt + (f" (#{count})" if count > _LOG_FIRST else ""), *args)

    # -- files and checkpoints ----------------------------------------------------------------

    def _scan(self) -> None:
        assert self.tailer is not None
        self.tailer.scan()
        for key, f in self.tailer.files.items():
            if key not in self.tracker.files:
                self.tracker.start(key, f.position, f.lines, f.source_id, f.path)
            if f.orphaned_at is not None:
                self._orphans.add(key)
            else:
                self._orphans.discard(key)

    def _resume(self, key: str, path: str, fh: BinaryIO) -> Resume | None:
        entry = self.ckpt.files.get(key)
        if entry is None:
            return None
        size = os.fstat(fh.fileno()).st_size
        if size < entry.position:
            log.warning("%s is smaller than its checkpoint (%d < %d): truncated while stopped, "
                        "reading it from the start", path, size, entry.position)  # fmt: skip
            return None
        if entry.fp_len and fingerprint(fh.fileno(), entry.fp_len) != entry.fp:
            log.warning("%s has other content than checkpointed (inode reused): from the start",
                        path)  # fmt: skip
            return None
        if entry.path != path and not entry.fp_len:
            return None
        return Resume(entry.position, entry.lines, entry.source_id)

    def _closed(self, f: TailedFile) -> None:
        c = self.tracker.files.get(f.key)
        if c is not None:
            c.path, c.fp, c.fp_len = f.path, f.fp, f.fp_len
        if f.orphaned_at is not None:
            self._orphans.add(f.key)  # forgotten once its last line is acknowledged

    def _drop_stale_entries(self) -> None:
        assert self.tailer is not None
        for key in set(self.ckpt.files) - set(self.tailer.files):
            log.info(
                "checkpoint: %s is no longer matched, forgetting it", self.ckpt.files[key].path
            )
            del self.ckpt.files[key]

    def _save(self, force: bool = False) -> None:
        assert self.store is not None and self.tailer is not None
        now = time.monotonic()
        if not self.tracker.changed or (
            not force and now - self._last_save < self.settings.text_checkpoint_interval_s
        ):
            return
        for key in list(self._orphans):
            if key not in self.tailer.files and not self.tracker.in_flight(key):
                self.tracker.forget(key)
                self.ckpt.files.pop(key, None)
                self._orphans.discard(key)
        for key, c in self.tracker.files.items():
            f = self.tailer.files.get(key)
            if f is not None:
                c.path, c.fp, c.fp_len = f.path, f.fp, f.fp_len
            self.ckpt.files[key] = FileCheckpoint(
                c.path, c.source_id, c.position, c.lines, c.fp, c.fp_len
            )
            if c.max_seq >= 0:
                self.ckpt.sources[c.source_id] = max(self.ckpt.sources.get(c.source_id, 0),
                                                     c.max_seq + 1)  # fmt: skip
        self.store.save(self.ckpt)
        self.tracker.changed = False
        self._last_save = now
