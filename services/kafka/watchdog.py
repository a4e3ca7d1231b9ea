"""What a batch loop cannot see from its own polls, checked every few seconds on a thread:

- its input and output topics exist (a consumer subscribed to a missing topic idles forever;
  a producer to a missing topic fails only after ``topic.metadata.propagation.max.ms``);
- it holds partitions when its input topics have some (a consumer that waits for a dead
  member's session to expire, or that cannot join, is not doing its job; so is an idle replica
  beyond the partition count: run at most as many replicas as partitions);
- the cluster answers (a metadata request is also the proof that it is back).

Each finding is kept with its reason for health, and logged once when it appears and once when
it clears.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import AdminClient

from streamsense.services.kafka.clientlog import ClientState

log = logging.getLogger(__name__)

CHECK_EVERY_S = 5.0
#: How long a loop may hold no partitions (joining, rebalancing) before health says so.
UNASSIGNED_GRACE_S = 3.0
METADATA_TIMEOUT_S = 5.0


class Watchdog:
    def __init__(
        self,
        client_config: dict[str, Any],
        group_id: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        state: ClientState,
        assignment: Callable[[], list[tuple[str, int]]],
        every_s: float = CHECK_EVERY_S,
    ) -> None:
        # its own client: on the consumer's connection a metadata request waits behind a
        # pending JoinGroup (seconds to minutes, exactly when the answer matters)
        self._admin = AdminClient(client_config)
        self.group_id = group_id
        self.inputs = list(inputs)
        self.outputs = [t for t in outputs if t not in self.inputs]
        self.state = state
        self._assignment = assignment
        self.every_s = every_s
        self.missing: list[str] = []
        self.unassigned: str | None = None
        self._empty_since: float | None = None  # since when the loop has held nothing
        self.checked = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # the loop's rebalance callback and this thread both update the assignment finding
        self._lock = threading.Lock()

    def consumer_error(self, m: Message) -> None:
        """A consumer error that names no record: a missing input topic is kept for health
        (until the next check finds it), anything but the end of a partition is logged."""
        err = m.error()
        assert err is not None
        if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            self.missing = sorted({*self.missing, str(m.topic())})
        elif err.code() != KafkaError._PARTITION_EOF:
            log.error("consumer error on %s: %s", m.topic(), err)

    def start(self) -> Watchdog:
        self._thread = threading.Thread(target=self._run, name="kafka-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(METADATA_TIMEOUT_S + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # a check must never take the service down
                log.exception("health check failed")
            self._stop.wait(self.every_s)

    def check(self) -> None:
        try:
            md = self._admin.list_topics(timeout=METADATA_TIMEOUT_S)
        except KafkaException as exc:
            self.state.unreachable(f"metadata request failed: {exc.args[0].str()}")
            return
        self.state.reachable()
        present = {name for name, t in md.topics.items() if t.error is None}
        self._set_missing([t for t in [*self.inputs, *self.outputs] if t not in present])
        partitions = sum(len(md.topics[t].partitions) for t in self.inputs if t in present)
        self._check_assignment(partitions)
        self.checked += 1

    def assigned(self, held: list[tuple[str, int]]) -> None:
        """The loop got partitions: that finding is stale at once, and so is a missing topic
        it got partitions of (the next check would say so only seconds later)."""
        with self._lock:  # a check that read the assignment just before it came reports now
            if self.unassigned and held:
                self._report_assignment(None, held)
        topics = {t for t, _ in held}
        if any(t in topics for t in self.missing):
            self._set_missing([t for t in self.missing if t not in topics])

    def _set_missing(self, missing: list[str]) -> None:
        if missing and missing != self.missing:
            log.error(
                "%s: topic(s) %s do not exist: run `streamsense topics create`",
                self.state.name,
                ", ".join(missing),
            )
        elif not missing and self.missing:
            log.warning("%s: topic(s) %s exist now", self.state.name, ", ".join(self.missing))
        self.missing = missing

    def _check_assignment(self, partitions: int) -> None:
        """Red once the loop has held nothing for UNASSIGNED_GRACE_S although its topics have
        partitions: joining a group or a rebalance takes a few seconds and is no finding (it
        was a warning at every start once this check stopped waiting behind the JoinGroup)."""
        with self._lock:
            held = self._assignment()
            now = time.monotonic()
            if held or not partitions:
                self._empty_since = None
            elif self._empty_since is None:
                self._empty_since = now
            late = self._empty_since is not None and now - self._empty_since >= UNASSIGNED_GRACE_S
            self._report_assignment(self._unassigned_reason(partitions) if late else None, held)

    def _unassigned_reason(self, partitions: int) -> str:
        verb = "has" if len(self.inputs) == 1 else "have"
        return (
            f"no partitions assigned although {', '.join(self.inputs)} {verb} {partitions} "
            f"(group {self.group_id} is rebalancing, waits for a dead member's session to "
            "expire, or has more members than partitions)"
        )

    def _report_assignment(self, reason: str | None, held: list[tuple[str, int]]) -> None:
        """Keep the finding; log only when it changes (call with the lock held)."""
        if reason and not self.unassigned:
            log.warning("%s: %s", self.state.name, reason)
        elif not reason and self.unassigned:
            log.warning("%s: partitions assigned: %s", self.state.name, held)
        self.unassigned = reason
