"""Records the consumer cannot read: a dead letter each (the reason, no payload), and the
partition reads on past them.

librdkafka reports such a record (a compressed batch that fails to decompress, e.g. a zstd
bomb past ``receive.message.max.bytes``; a corrupt record) as a consumer error at its partition
and offset and, left alone, fetches it again for ever: the partition stalls behind it while
every health check stays green. :meth:`UnreadableRecords.split` turns each into a stand-in
message carrying the error; the loop dead-letters it with its batch like any poison message (so
the dead letter and the offsets around it become durable together) and it seeks past it here.

A compressed batch fails as a whole and is reported at its base offset. After a seek past that
offset the next fetch fails again at the same, lower, offset: the record at the position sought
to is inside the same batch, so it is the next one dead-lettered. Each offset of the batch is
thus dead-lettered once, in order, and reading goes on after the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streamsense.services.kafka.exceptions import UnreadableRecordError
from streamsense.services.kafka.handler import Outcome
from streamsense.services.kafka.offsets import TopicPartitionKey

log = logging.getLogger(__name__)

#: Consumer errors that name one record no fetch will ever read.
UNREADABLE = frozenset(
    {
        KafkaError._BAD_COMPRESSION,
        KafkaError._BAD_MSG,
        KafkaError.INVALID_MSG,  # a corrupt record (CRC)
        KafkaError.MSG_SIZE_TOO_LARGE,
    }
)


def unreadable_error(m: Message) -> UnreadableRecordError | None:
    """The reason a stand-in from :meth:`UnreadableRecords.split` carries, None for a record."""
    err = m.error()
    if err is None:
        return None
    return UnreadableRecordError(
        f"the consumer cannot read this record ({err.name()}: {err.str()}); skipped, no payload"
    )


def with_unreadable(batch: list[Message], done: Sequence[Outcome]) -> list[Outcome]:
    """The outcomes of ``batch``: ``done`` (the handler's, for its records) in order, with the
    dead-letter reason of each stand-in between them."""
    if len(done) == len(batch):  # no stand-in among them
        return list(done)
    it = iter(done)
    return [next(it) if (e := unreadable_error(m)) is None else e for m in batch]


class UnreadableRecords:
    def __init__(self) -> None:
        #: per partition, the offset a skip sought to (see the module doc)
        self._sought: dict[TopicPartitionKey, int] = {}

    def split(
        self, consumer: Consumer, raw: list[Message]
    ) -> tuple[list[Message], list[Message], list[Message]]:
        """``raw`` as (the batch: records and stand-ins of unreadable ones, in order; its
        records, the batch itself when it holds no stand-in; the other consumer errors). Past
        an unreadable record the rest of its partition in ``raw`` is dropped: the seek past it
        reads that again."""
        batch: list[Message] = []
        errors: list[Message] = []
        skipped: set[TopicPartitionKey] = set()
        for m in raw:
            tp = (str(m.topic()), int(m.partition() or 0))
            if tp in skipped:
                continue
            err = m.error()
            if err is None:
                batch.append(m)
                continue
            offset = m.offset()
            if err.code() not in UNREADABLE or offset is None or offset < 0:
                errors.append(m)
                continue
            at = max(offset, self._sought.get(tp, -1))
            skipped.add(tp)
            self._sought[tp] = at + 1
            log.error("%s[%d]@%d cannot be read (%s): dead-lettering it and reading on from @%d",
                      tp[0], tp[1], at, err.str(), at + 1)  # fmt: skip
            try:
                consumer.seek(TopicPartition(tp[0], tp[1], at + 1))
            except KafkaException as exc:  # revoked meanwhile: its new owner meets it
                log.debug("seek %s[%d]: %s", tp[0], tp[1], exc)
                continue
            batch.append(Message(topic=tp[0], partition=tp[1], offset=at, error=err))
        if not skipped:  # the common case: no stand-in, the batch is all records
            return batch, batch, errors
        return batch, [m for m in batch if m.error() is None], errors

    def forget(self, tps: list[TopicPartitionKey] | None = None) -> None:
        """After a rewind (all) or a revoke: positions sought to no longer say anything."""
        if tps is None:
            self._sought.clear()
        for tp in tps or ():
            self._sought.pop(tp, None)
