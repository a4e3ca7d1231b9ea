"""librdkafka's client-level errors and logs, reduced to what an operator needs.

librdkafka reports an unreachable broker on every reconnect attempt, as a log line and as an
error callback, several times a second. :class:`ClientState` turns that into state changes:
one warning when the cluster becomes unreachable, one line when it answers again (known from
the statistics callback or from any successful request), and it remembers how long it has been
down so health can turn red after a grace period. Credentials, permissions and TLS errors do
not fix themselves: they are kept, with librdkafka's reason, for health to report.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaError

#: Client errors that retrying will not fix: health reports them (never the password).
CONFIG_ERRORS = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError._SSL,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)
#: Errors that mean "cannot reach the cluster right now".
UNREACHABLE = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE})
#: How long a configuration error keeps health red after it last occurred (librdkafka repeats
#: it on every reconnect for as long as it lasts).
CONFIG_ERROR_WINDOW_S = 60.0


class ClientState:
    """One per service and cluster, shared by the service's consumer and producer so an
    outage is reported once (:meth:`of`)."""

    _shared: dict[tuple[str, str], ClientState] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def of(cls, name: str, bootstrap: str) -> ClientState:
        with cls._shared_lock:
            state = cls._shared.get((name, bootstrap))
            if state is None:
                state = cls._shared[(name, bootstrap)] = cls(name, bootstrap)
            return state

    def __init__(self, name: str, bootstrap: str) -> None:
        self.name = name
        self.bootstrap = bootstrap
        self.log = logging.getLogger(f"streamsense.kafka.{name}")
        self.down_since: float | None = None
        self.down_reason: str | None = None
        self._config_error: tuple[float, str] | None = None
        # librdkafka's callbacks and the watchdog report from different threads
        self._lock = threading.Lock()

    def librdkafka_config(self) -> dict[str, Any]:
        """The callback to add to a librdkafka configuration."""
        return {"error_cb": self.on_error}

    def on_error(self, err: KafkaError) -> None:
        code = err.code()
        if err.fatal() or code in CONFIG_ERRORS:
            first = self.config_error() is None
            self._config_error = (time.monotonic(), f"{err.name()}: {err.str()}")
            if first:
                self.log.error("%s: kafka client error: %s", self.name, err.str())
        elif code in UNREACHABLE:
            self.unreachable(err.str())
        else:
            self.log.warning("%s: kafka: %s", self.name, err.str())

    def unreachable(self, reason: str) -> None:
        with self._lock:
            self.down_reason = reason
            if self.down_since is not None:
                return
            self.down_since = time.monotonic()
        self.log.warning(
            "%s: kafka at %s is unreachable (%s); retrying", self.name, self.bootstrap, reason
        )

    def reachable(self) -> None:
        with self._lock:
            since, self.down_since, self.down_reason = self.down_since, None, None
        if since is not None:
            self.log.warning(
                "%s: kafka at %s answers again after %.1f s",
                self.name,
                self.bootstrap,
                time.monotonic() - since,
            )

    def on_stats(self, stats: dict[str, Any]) -> None:
        """A broker in state UP means the cluster is reachable."""
        brokers = stats.get("brokers", {}).values()
        if any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in brokers):
            self.reachable()

    def unreachable_for(self) -> float:
        return 0.0 if self.down_since is None else time.monotonic() - self.down_since

    def config_error(self) -> str | None:
        """An authentication, authorization, TLS or fatal error in the last minute."""
        if self._config_error is None:
            return None
        at, text = self._config_error
        return text if time.monotonic() - at < CONFIG_ERROR_WINDOW_S else None
