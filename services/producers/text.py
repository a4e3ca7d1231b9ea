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
  repeats lines (:mod:`streamsense.services.producers.text_files` keeps the book).
- Each file is read at most ``4 * CHUNK`` bytes per round and a round follows at once while any
  file has more: a giant line delays other files' lines by one round, and is served truncated
  as soon as it passes ``text_max_line_bytes``.
- Kafka unreachable (:class:`~streamsense.services.producers.kafka_watch.KafkaWatch`): no
  acknowledgement for ``text_kafka_timeout_s`` while lines wait stops the producer with
  :class:`KafkaUnavailableError` and the count of unacknowledged lines. stdin is read only while
  fewer than ``text_max_in_flight`` lines wait for Kafka, and has no checkpoint: lines it could
  not deliver are reported as not delivered, never as sent again later.
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
from streamsense.services.producers.checkpoint import AckTracker, Checkpoint, CheckpointStore
from streamsense.services.producers.exceptions import (
    KafkaUnavailableError,
    LineError,
    SourceError,
)
from streamsense.services.producers.kafka_watch import KafkaWatch
from streamsense.services.producers.lines import (
    INVALID_UTF8,
    TRUNCATED,
    LineSplitter,
    RawLine,
    line_text,
)
from streamsense.services.producers.settings import TextProducerSettings
from streamsense.services.producers.tail import CHUNK, ChangeWatcher, TailedFile, Tailer
from streamsense.services.producers.text_files import FileBook

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
        self.watch = KafkaWatch(settings.kafka_bootstrap, settings.text_kafka_timeout_s)
        self.producer = producer or Producer(
            settings,
            policy=BackpressurePolicy.BLOCK,
            max_in_flight=settings.text_max_in_flight,
            linger_ms=settings.text_linger_ms,
            config=self.watch.client_config(),
        )
        self.stop_event = stop or threading.Event()
        self.stats = TextStats()
        self.tracker = AckTracker()
        self.book: FileBook | None = None
        self.ckpt = Checkpoint()
        self.tailer: Tailer | None = None
        self._seq: dict[str, int] = {}
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
        """Send until the input ends (or ``stop``). Raises KafkaUnavailableError or
        DeliveryFailedError, with how many lines Kafka did not acknowledge, on a Kafka problem."""
        unavailable: KafkaUnavailableError | None = None
        try:
            if self.stdin is not None:
                self._run_stdin(self.stdin)
            else:
                self._run_files()
        except KafkaUnavailableError as exc:
            unavailable = exc
        finally:
            wait = 1.0 if unavailable else self.settings.text_flush_timeout_s
            left = self.producer.flush(wait)
            if left:
                self.producer.close(0)  # what is left is purged, so "not delivered" stays true
            if self.book is not None and self.tailer is not None:
                self.book.save(self.tailer, 0, force=True)  # acknowledged lines only
            if self.tailer is not None:
                self.tailer.close()
        if unavailable is not None or left:
            what = self._unsent(left, unavailable is not None)
            msg = f"{unavailable or 'Kafka did not acknowledge every line'}: {what}"
            raise KafkaUnavailableError(msg)
        if self.tracker.failed is not None or self.producer.failed:
            msg = (
                f"Kafka refused {self.producer.failed} line(s): {self.tracker.failed or 'see log'}"
            )
            raise DeliveryFailedError(msg)
        return self.stats

    def _unsent(self, left: int, early: bool) -> str:
        if self.stdin is not None:
            rest = ", and the rest of stdin was not read" if early else ""
            return (
                f"{left} line(s) from stdin not acknowledged (they may not have been written)"
                f"{rest}; stdin cannot be read again"
            )
        return (
            f"{left} line(s) not acknowledged; the checkpoint holds only acknowledged lines, "
            "so they are read and sent again at the next start"
        )

    def _run_files(self) -> None:
        assert self.pattern is not None
        s = self.settings
        store = CheckpointStore(s.checkpoint_path(self.pattern, self.source_id))
        self.ckpt = store.load()
        found = reconcile.scan(s, [self.topic, self._dlq_topic], self.ckpt.producer_id,
                               s.text_reconcile_scan)  # fmt: skip
        if reconcile.apply(self.ckpt, found):
            log.info("reconciled the checkpoint with %s: no line is sent twice", self.topic)
        self._seq = dict(self.ckpt.sources)
        store.save(self.ckpt)  # the producer id must be on disk before the first record
        book = self.book = FileBook(store, self.ckpt, self.tracker)
        self.tailer = Tailer(self.pattern, max_line_bytes=s.text_max_line_bytes,
                             follow=self.follow, grace_s=s.text_rotate_grace_s,
                             source_id=self.source_id, resume=book.resume,
                             on_close=book.closed)  # fmt: skip
        matched = self._scan(None)
        if not self.tailer.files and not self.follow:
            msg = f"no file matches {self.pattern}"
            raise SourceError(msg)
        book.adopt_rotated(self.tailer)
        book.scanned(self.tailer)
        changed = threading.Event()
        watcher = ChangeWatcher(self.pattern, changed).start() if self.follow else None
        last_scan = time.monotonic()
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if self.follow and (changed.is_set() or now - last_scan >= s.text_poll_interval_s):
                    changed.clear()
                    matched = self._scan(matched)
                    last_scan = now
                batch = self.tailer.read()
                for f, raw in batch:
                    self._emit(f, raw)
                self._served()
                if batch or not self.tailer.idle:
                    continue  # more to read now: no waiting behind a file that has more
                if not self.follow and not self.tailer.files:
                    break
                if self.producer.in_flight:
                    self.producer.poll(0.05)
                else:
                    changed.wait(min(0.2, s.text_poll_interval_s))
        finally:
            if watcher is not None:
                watcher.stop()

    def _scan(self, matched: int | None) -> int:
        """Rescan the glob; say when it matches nothing (at start) and when that changes."""
        assert self.tailer is not None and self.book is not None
        self.tailer.scan()
        self.book.scanned(self.tailer)
        now = self.tailer.matched
        if matched is None and not now and self.follow:
            log.warning("no file matches %s yet: waiting for one to appear", self.pattern)
        elif matched is not None and bool(matched) != bool(now):
            if now:
                log.info("%s now matches %d file(s)", self.pattern, now)
            else:
                log.warning("no file matches %s any more: waiting for one to appear", self.pattern)
        return now

    def _run_stdin(self, stream: BinaryIO) -> None:
        source = self.source_id or "stdin"
        splitter = LineSplitter(self.settings.text_max_line_bytes)
        fd = stream.fileno()
        while not self.stop_event.is_set():
            self._wait_for_room()
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                self._served()
                continue
            data = os.read(fd, CHUNK)
            if not data:
                last = splitter.finish()
                if last is not None and not last.tail:
                    self._emit_line(None, source, last)
                break
            for raw in splitter.feed(data):
                if not raw.tail:
                    self._emit_line(None, source, raw)
            self._served()

    def _wait_for_room(self) -> None:
        """Read no more input while ``text_max_in_flight`` lines wait for Kafka (stdin is not
        read faster than it is acknowledged); KafkaUnavailableError when Kafka stays silent."""
        limit = self.settings.text_max_in_flight
        while self.producer.in_flight >= limit and not self.stop_event.is_set():
            self.producer.poll(0.05)
            self.watch.check(self.producer)

    def _served(self) -> None:
        self.producer.poll(0)
        self.watch.check(self.producer)
        if self.tracker.failed is not None:
            self.stop_event.set()
        elif self.book is not None and self.tailer is not None:
            self.book.save(self.tailer, self.settings.text_checkpoint_interval_s)

    # -- lines -> records ---------------------------------------------------------------------

    def _emit(self, f: TailedFile, raw: RawLine) -> None:
        if raw.tail:  # the skipped rest of a line sent truncated: only the position moves
            self.tracker.skip(f.key, raw.end, f.lines)
            return
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
            self._flagged(st.truncated, "%s: line of %d+ bytes truncated to %d", where, raw.length,
                          len(raw.data))  # fmt: skip
        if INVALID_UTF8 in lt.flags:
            st.invalid_utf8 += 1
            self._flagged(st.invalid_utf8, "%s: invalid UTF-8 replaced", where)
        seq = self._seq.get(source, 0)
        self._seq[source] = seq + 1
        event = TextEvent(source_id=source, text=lt.text, ts_ns=time.time_ns(), seq=seq,
                          trace_id=uuid.uuid4().hex, path=f.path if f else None,
                          position=raw.start, flags=lt.flags)  # fmt: skip
        self._wait_for_room()
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
        self._wait_for_room()
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
