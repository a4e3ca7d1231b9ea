"""The text producer's lines -> records: a ``TextEvent`` on ``text``, or the line on its DLQ.

- One event per line; ``seq`` grows per source (a file run resumes it from the checkpoint);
  ``path`` and ``position`` (byte offset of the line) are set.
- Whitespace-only lines are skipped and counted (``blank``).
- Over-long lines keep their first ``text_max_line_bytes`` bytes and get the flag ``truncated``;
  invalid UTF-8 is replaced (U+FFFD) and flagged ``invalid-utf8-replaced``.
- With ``json_field`` a line that is not a JSON object with that string field goes to
  ``<topic>.dlq``: value = the line's bytes, headers =
  :class:`~streamsense.schemas.dlq.DeadLetterInfo` with ``original_partition = -1`` (it never
  reached a partition) and ``original_offset`` = the line's byte position in its file, plus
  ``ss-src-path``.
- A line from a file carries its position in a header
  (:func:`~streamsense.services.producers.reconcile.src_header`), and its acknowledgement moves
  the file's checkpoint (:class:`~streamsense.services.producers.checkpoint.AckTracker`); a
  stdin line carries none.
- No line is produced while ``text_max_in_flight`` wait for Kafka; Kafka's first refusal is logged
  and kept for the exit message.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message

from streamsense.schemas.catalog import dlq_topic
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import encode
from streamsense.schemas.text import TextEvent
from streamsense.services.kafka.producer import DeliveryCallback, Producer
from streamsense.services.observability import metrics
from streamsense.services.producers import reconcile
from streamsense.services.producers.checkpoint import AckTracker, Checkpoint
from streamsense.services.producers.exceptions import LineError
from streamsense.services.producers.kafka_watch import KafkaWatch, refusal_hint
from streamsense.services.producers.lines import INVALID_UTF8, TRUNCATED, RawLine, line_text
from streamsense.services.producers.tail import TailedFile

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
    unreadable: int = 0


class LineSender:
    def __init__(
        self,
        producer: Producer,
        topic: str,
        *,
        service: str,
        json_field: str | None,
        tracker: AckTracker,
        max_in_flight: int,
        watch: KafkaWatch,
        stop: threading.Event,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.dlq_topic = dlq_topic(topic)
        self.json_field = json_field
        self.max_in_flight = max_in_flight
        self.watch = watch
        self.stop_event = stop
        self.tracker = tracker
        self.stats = TextStats()
        #: of the file run's checkpoint (:meth:`resume`): only lines from files carry it
        self.producer_id = ""
        self.seq: dict[str, int] = {}
        #: Kafka's first refusal of a line, with what to do about it
        self.refusal: str | None = None
        self._service = service

    def resume(self, ckpt: Checkpoint) -> None:
        """Send a file run's lines under its checkpoint: its producer id, its ``seq`` per source."""
        self.producer_id = ckpt.producer_id
        self.seq = dict(ckpt.sources)

    def wait_for_room(self) -> None:
        """Read no more input while ``text_max_in_flight`` lines wait for Kafka (stdin is not
        read faster than it is acknowledged); KafkaUnavailableError when Kafka stays silent."""
        while self.producer.in_flight >= self.max_in_flight and not self.stop_event.is_set():
            self.producer.poll(0.05)
            self.watch.check(self.producer)

    def emit(self, f: TailedFile, raw: RawLine) -> None:
        if raw.tail:  # the skipped rest of a line sent truncated: only the position moves
            self.tracker.skip(f.key, raw.end, f.lines)
            return
        f.lines += 1
        self.emit_line(f, f.source_id, raw)

    def emit_line(self, f: TailedFile | None, source: str, raw: RawLine) -> None:
        st = self.stats
        st.lines += 1
        if not raw.truncated and not raw.data.strip():
            st.blank += 1
            metrics.SKIPPED.labels(self._service, "blank-line").inc()
            if f is not None:
                self.tracker.skip(f.key, raw.end, f.lines)
            return
        where = f"{f.shown if f else source}@{raw.start}"
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
        seq = self.seq.get(source, 0)
        self.seq[source] = seq + 1
        event = TextEvent(source_id=source, text=lt.text, ts_ns=time.time_ns(), seq=seq,
                          trace_id=uuid.uuid4().hex, path=f.shown if f else None,
                          position=raw.start, flags=lt.flags)  # fmt: skip
        self.wait_for_room()
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
            headers.append((reconcile.PATH_HEADER, f.shown.encode()))
        self.stats.dlq += 1
        metrics.DLQ_TOTAL.labels(self._service, self.topic, info.error_class).inc()
        self._flagged(self.stats.dlq, "%s -> %s: %s: %s", where, self.dlq_topic,
                      info.error_class, info.error_message)  # fmt: skip
        self.wait_for_room()
        self.producer.produce(self.dlq_topic, raw.data, key=source, headers=headers,
                              on_delivery=self._on_delivery(f, raw, -1))  # fmt: skip

    def _headers(self, f: TailedFile | None, raw: RawLine, seq: int) -> list[tuple[str, bytes]]:
        if f is None:
            return []
        return [reconcile.src_header(self.producer_id, f.key, f.lines, raw.end, seq)]

    def _on_delivery(self, f: TailedFile | None, raw: RawLine, seq: int) -> DeliveryCallback:
        account, refused = self.producer.account, self._refused
        if f is None:  # stdin: no position to keep, only what Kafka said

            def sent(err: KafkaError | None, msg: Message) -> None:
                account(str(msg.topic()), err is None, err is not None)
                if err is not None:
                    refused(err)

            return sent
        key, entry, tracker = f.key, self.tracker.add(f.key, raw.end, f.lines, seq), self.tracker

        def done(err: KafkaError | None, msg: Message) -> None:
            tracker.done(key, entry, err)
            account(str(msg.topic()), err is None, err is not None)
            if err is not None:
                refused(err)

        return done

    def _refused(self, err: KafkaError) -> None:
        """Kafka refused a line: the first refusal is logged and kept for the exit message."""
        if self.refusal is None:
            self.refusal = f"{err.str()}{refusal_hint(err)}"
            log.error("Kafka refused a line for %s: %s", self.topic, self.refusal)

    @staticmethod
    def _flagged(count: int, fmt: str, *args: object) -> None:
        if count <= _LOG_FIRST or count % _LOG_EVERY == 0:
            log.warning(fmt + (f" (#{count})" if count > _LOG_FIRST else ""), *args)
