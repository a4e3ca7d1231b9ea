"""How a producer notices that Kafka is not there, says so once, and gives up in bounded time.

librdkafka retries an unreachable broker for ``message.timeout.ms`` (5 minutes) and reports every
failed connection attempt, several lines a second. :class:`KafkaWatch` takes its error callback
and its log instead: each kind of error is logged once per outage (and "answers again" once
when acknowledgements resume), and :meth:`KafkaWatch.check` raises
:class:`~streamsense.services.producers.exceptions.KafkaUnavailableError` when records have been
waiting for ``timeout_s`` without a single acknowledgement. The producers call it from their
loops and exit 1 with the count of records Kafka never acknowledged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from streamsense.services.kafka.producer import Producer
from streamsense.services.producers.exceptions import KafkaUnavailableError, TopicMissingError

log = logging.getLogger(__name__)


class _NoConnectionNoise(logging.Filter):
    """Drops librdkafka's per-attempt connection failures (facility ``FAIL``): the error
    callback reports the same, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (args and args[0] == "FAIL")


#: What to do when Kafka refuses records for one of these reasons: a restart alone fails again.
_REFUSAL_HINTS = {
    KafkaError.MSG_SIZE_TOO_LARGE: " (the record is larger than the topic's max.message.bytes: "
    "raise it, as `streamsense topics create` does, or send smaller records)",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: " (this client may not write to the topic: grant its "
    "principal WRITE on it)",
}


def refusal_hint(err: KafkaError) -> str:
    """What to do about a refused record, for the errors a restart alone does not fix."""
    return _REFUSAL_HINTS.get(err.code(), "")


_librdkafka = logging.getLogger("streamsense.librdkafka")
_librdkafka.addFilter(_NoConnectionNoise())


class KafkaWatch:
    def __init__(self, bootstrap: str, timeout_s: float) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.last_error: str | None = None
        self._logged: set[str] = set()
        self._acked = 0
        self._since = time.monotonic()

    def client_config(self) -> dict[str, Any]:
        """What the producer's librdkafka client needs: our error callback and logger."""
        return {"error_cb": self._on_error, "logger": _librdkafka}

    def _on_error(self, err: KafkaError) -> None:
        self.last_error = err.str()
        if err.name() not in self._logged:
            self._logged.add(err.name())
            log.warning("kafka at %s: %s", self.bootstrap, err.str())

    def check(self, producer: Producer) -> None:
        """KafkaUnavailableError when records have waited ``timeout_s`` with no acknowledgement."""
        now = time.monotonic()
        waiting = producer.in_flight + producer.waiting
        if producer.acked != self._acked or not waiting:
            if self._logged and producer.acked != self._acked:
                log.info("kafka at %s acknowledges records again", self.bootstrap)
                self._logged.clear()
                self.last_error = None
            self._acked, self._since = producer.acked, now
            return
        if now - self._since >= self.timeout_s:
            reason = f" (last error: {self.last_error})" if self.last_error else ""
            msg = f"Kafka at {self.bootstrap} acknowledged nothing for {self.timeout_s:g} s{reason}"
            raise KafkaUnavailableError(msg)

    def check_topic(self, producer: Producer, topic: str) -> None:
        """Kafka must answer within ``timeout_s`` and have ``topic``; else the error says what
        to fix (the bootstrap address, or ``streamsense topics create``)."""
        try:
            topics = producer.list_topics(timeout=self.timeout_s).topics
        except KafkaException as exc:
            msg = (
                f"Kafka at {self.bootstrap} did not answer within {self.timeout_s:g} s "
                f"({exc.args[0].str()}): check STREAMSENSE_KAFKA_BOOTSTRAP, or wait longer "
                "with --kafka-timeout"
            )
            raise KafkaUnavailableError(msg) from exc
        if topic not in topics:
            msg = (
                f"topic {topic!r} does not exist on {self.bootstrap}: "
                "run `streamsense topics create`"
            )
            raise TopicMissingError(msg)
