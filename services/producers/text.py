"""The text producer: lines from followed files (or stdin) -> ``TextEvent`` -> ``text``.

:class:`TextProducer` reads; each line goes to Kafka through
:class:`~streamsense.services.producers.text_sender.LineSender` (one event per line, blank lines
skipped, over-long lines truncated, invalid UTF-8 replaced, lines without the ``json_field`` to
``<topic>.dlq``: that module says how).

- ``source_id`` is the file name (or ``--source-id``); ``seq`` grows per source across restarts.
- File positions are checkpointed only over acknowledged lines, and reconciled with the topic at
  start (see :mod:`streamsense.services.producers.reconcile`), so a restart neither loses nor
  repeats lines (:mod:`streamsense.services.producers.text_files` keeps the book).
- Lines read while more input waits linger ``text_linger_ms`` to share a request; when nothing
  more is there to read they are sent at once (``text_send_when_idle``), so a quiet log does
  not pay the linger on every line.
- Each file is read at most ``4 * CHUNK`` bytes per round and a round follows at once while any
  file has more: a giant line delays other files' lines by one round, and is served truncated
  as soon as it passes ``text_max_line_bytes``.
- A matched file that cannot be opened or read is reported (log, ``unreadable`` in the live
  view and health) and, without ``--follow``, ends the run with :class:`SourceError` naming it
  once the other files are sent: never an exit 0 with a file left unread.
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
from dataclasses import asdict
from typing import Any, BinaryIO

from streamsense.services.kafka.exceptions import DeliveryFailedError
from streamsense.services.kafka.producer import BackpressurePolicy, Producer
from streamsense.services.producers import reconcile
from streamsense.services.producers.checkpoint import AckTracker, Checkpoint, CheckpointStore
from streamsense.services.producers.exceptions import KafkaUnavailableError, SourceError
from streamsense.services.producers.kafka_watch import KafkaWatch
from streamsense.services.producers.lines import LineSplitter
from streamsense.services.producers.settings import TextProducerSettings
from streamsense.services.producers.tail import (
    CHUNK,
    ChangeWatcher,
    Tailer,
    not_regular,
    printable,
)
from streamsense.services.producers.text_files import FileBook
from streamsense.services.producers.text_sender import LineSender, TextStats

log = logging.getLogger(__name__)


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
        self.tracker = AckTracker()
        self.sender = LineSender(self.producer, self.topic, service=settings.service_name,
                                 json_field=json_field, tracker=self.tracker,
                                 max_in_flight=settings.text_max_in_flight, watch=self.watch,
                                 stop=self.stop_event)  # fmt: skip
        self.book: FileBook | None = None
        self.ckpt = Checkpoint()
        self.tailer: Tailer | None = None
        self._store: CheckpointStore | None = None
        #: matched files left unread by a run without --follow (raised after the Kafka checks)
        self._unread: SourceError | None = None

    # -- observability ------------------------------------------------------------------------

    @property
    def stats(self) -> TextStats:
        """What was read and sent so far (the files' counts as of the last :meth:`snapshot`)."""
        return self.sender.stats

    def snapshot(self) -> dict[str, int | float | str]:
        if self.tailer is not None:
            self.stats.files = len(self.tailer.files)
            self.stats.rotations = self.tailer.rotations
            self.stats.truncations = self.tailer.truncations
            self.stats.unreadable = len(self.tailer.unreadable)
        p = self.producer
        return {**asdict(self.stats), "acked": p.acked, "failed": p.failed,
                "in_flight": p.in_flight}  # fmt: skip

    def health(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = self.snapshot()
        if self.tailer is not None and self.tailer.unreadable:
            detail["unreadable_files"] = dict(self.tailer.unreadable)
        return self.tracker.failed is None, detail

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
            try:
                if self.book is not None and self.tailer is not None:
                    self.book.save(self.tailer, 0, force=True)  # acknowledged lines only
            finally:
                if self.tailer is not None:
                    self.tailer.close()
                if self._store is not None:
                    self._store.unlock()
        if unavailable is not None or left:
            what = self._unsent(left, unavailable is not None)
            msg = f"{unavailable or 'Kafka did not acknowledge every line'}: {what}"
            raise KafkaUnavailableError(msg)
        if self.tracker.failed is not None or self.producer.failed:
            again = (
                "; stdin cannot be read again" if self.stdin is not None
                else "; the checkpoint holds only acknowledged lines: they go at the next start"
            )  # fmt: skip
            why = self.sender.refusal or "see log"
            msg = f"Kafka refused {self.producer.failed} line(s): {why}"
            raise DeliveryFailedError(msg + again)
        if self._unread is not None:  # after the Kafka checks: those say more (exit 1)
            raise self._unread
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
        store = self._store = CheckpointStore(s.checkpoint_path(self.pattern, self.source_id))
        store.lock()  # before reading it: another producer may be about to write it
        self.ckpt = store.load()
        found = reconcile.scan(s, [self.topic, self.sender.dlq_topic], self.ckpt.producer_id,
                               s.text_reconcile_scan)  # fmt: skip
        if reconcile.apply(self.ckpt, found):
            log.info("reconciled the checkpoint with %s: no line is sent twice", self.topic)
        self.sender.resume(self.ckpt)
        store.save(self.ckpt)  # the producer id must be on disk before the first record
        book = self.book = FileBook(store, self.ckpt, self.tracker)
        self.tailer = Tailer(self.pattern, max_line_bytes=s.text_max_line_bytes,
                             follow=self.follow, grace_s=s.text_rotate_grace_s,
                             source_id=self.source_id, resume=book.resume,
                             on_close=book.closed)  # fmt: skip
        matched = self._scan(None)
        if not self.tailer.files and not self.follow:
            if self.tailer.unreadable:
                raise SourceError(self.tailer.unreadable_summary(sent=False))
            msg = f"no file matches {printable(self.pattern)}{not_regular(self.pattern)}"
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
                    self.sender.emit(f, raw)
                self._served()
                if batch or not self.tailer.idle:
                    continue  # more to read now: no waiting behind a file that has more
                if not self.follow and not self.tailer.files:
                    break
                if self.producer.in_flight:
                    self._idle(0.05)
                else:
                    changed.wait(min(0.2, s.text_poll_interval_s))
        finally:
            if watcher is not None:
                watcher.stop()
        if self.tailer.unreadable and not self.follow:
            self._unread = SourceError(self.tailer.unreadable_summary(sent=True))

    def _scan(self, matched: int | None) -> int:
        """Rescan the glob; say when it matches nothing (at start) and when that changes."""
        assert self.tailer is not None and self.book is not None and self.pattern is not None
        self.tailer.scan()
        self.book.scanned(self.tailer)
        now = self.tailer.matched
        if matched is None and not now and self.follow:
            log.warning("no file matches %s yet%s: waiting for one to appear",
                        printable(self.pattern), not_regular(self.pattern))  # fmt: skip
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
            self.sender.wait_for_room()
            if self.producer.in_flight and not select.select([fd], [], [], 0)[0]:
                self._idle(0.05)
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                self._served()
                continue
            data = os.read(fd, CHUNK)
            if not data:
                last = splitter.finish()
                if last is not None and not last.tail:
                    self.sender.emit_line(None, source, last)
                break
            for raw in splitter.feed(data):
                if not raw.tail:
                    self.sender.emit_line(None, source, raw)
            self._served()
        else:  # stopped before the end of stdin: what was read of a line is not a line yet
            if splitter.pending and not splitter.skipping:
                log.warning("stopped with %d byte(s) of an unfinished last line read from stdin: "
                            "not sent", splitter.pending)  # fmt: skip

    def _idle(self, timeout: float) -> None:
        """Nothing more to read now: wait up to ``timeout`` s for acknowledgements, sending the
        lines read at once unless ``text_send_when_idle`` is off (they linger, for nothing)."""
        if self.settings.text_send_when_idle:
            self.producer.flush(timeout)
        else:
            self.producer.poll(timeout)

    def _served(self) -> None:
        self.producer.poll(0)
        self.watch.check(self.producer)
        if self.tracker.failed is not None:
            self.stop_event.set()
        elif self.book is not None and self.tailer is not None:
            self.book.save(self.tailer, self.settings.text_checkpoint_interval_s)
