"""Which valid labels a round learns: a bound per source, and no replays.

Anyone who can write to ``labels.text`` names the source of a label (``source_id``), and a
single hostile or broken source could otherwise send as many labels as it likes: it would
make up most of every training round, of the prequential window that decides promotions and
of the replay buffer, and push every other source's labels out. So:

- **Share per source** (``STREAMSENSE_LEARNER_SOURCE_MAX_SHARE``; 1, the default, is off): of
  the labels learned in the last ``STREAMSENSE_LEARNER_SOURCE_WINDOW_S`` seconds, one source
  may hold at most that share, but never less than an equal split among the sources active in
  that interval (a lone source learns everything it sends: there is nobody to push out). A
  label over the cap is *skipped*: counted
  (``streamsense_learner_skipped_labels{reason="source_share"}``), named per source in health
  and logged once per source per interval, and committed. It is not dead-lettered: it is a
  valid record refused for volume, not for content, so there is nothing to fix and replay; a
  dead letter per flooded record would double the flood's writes into the topic operators read
  for real poison records, and drown those. The record stays on ``labels.text`` for its
  retention.
- **Replays** (``STREAMSENSE_LEARNER_DEDUP_WINDOW``): a source sending the same text (up to
  white space and case) with the same label as one of the last N distinct labels learned is
  skipped as ``duplicate`` (counted, not learned again): repeating an example weights it,
  another way to steer the model. The same text labeled by another source is learned
  (agreement between sources is evidence), and so is the same text with another label
  (people disagree; the window scores both).

What it cannot do: the source is what the label says (``source_id``; the record key only
partitions), so a producer that invents a new source id per label is bounded only by
``STREAMSENSE_LEARNER_SOURCES`` (and Kafka ACLs); and a share is relative, so while other
sources send, a legitimately dominant source is held to its share too (raise the share, or
set it to 1, where one source is meant to dominate).

The replay buffer applies the same share to what it keeps
(:class:`~streamsense.services.learner.replay.ReplayBuffer`). Records that are not valid
labels at all (unknown class, blank text, a source outside ``STREAMSENSE_LEARNER_SOURCES``)
never get here: they are dead-lettered with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: Admitted labels remembered per interval at most (memory bound under a flood of source ids).
WINDOW_MAX_LABELS = 100_000
#: Sources named in health (the most skipped first) and sources logged per interval at most.
REPORTED_SOURCES = 10
LOGGED_SOURCES = 20
#: Sources whose skip counts are kept (the smallest are forgotten beyond this).
TRACKED_SOURCES = 1_000

SOURCE_SHARE = "source_share"
DUPLICATE = "duplicate"


def fair_cap(share: float, active: int, total: int) -> int:
    """How many of ``total`` items one of ``active`` sources may hold: ``share`` of them, but
    never less than an equal split (a lone source may hold all of them)."""
    return math.ceil(max(share, 1.0 / max(1, active)) * total)


@dataclass
class AdmissionConfig:
    max_share: float = 0.25
    window_s: float = 60.0
    dedup_window: int = 10_000


@dataclass
class SourceShare:
    """Labels admitted per source over the last ``window_s`` seconds."""

    max_share: float
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _admitted: deque[tuple[float, str]] = field(default_factory=deque)
    _counts: Counter[str] = field(default_factory=Counter)

    def _expire(self, now: float) -> None:
        q, counts = self._admitted, self._counts
        while q and (q[0][0] <= now - self.window_s or len(q) > WINDOW_MAX_LABELS):
            _, source = q.popleft()
            counts[source] -= 1
            if not counts[source]:
                del counts[source]

    def admit(self, source: str) -> bool:
        """Whether ``source`` may learn one more label now (and if so, count it)."""
        now = self.clock()
        self._expire(now)
        held = self._counts.get(source, 0)
        active = len(self._counts) + (0 if held else 1)
        if held + 1 > fair_cap(self.max_share, active, len(self._admitted) + 1):
            return False
        self._admitted.append((now, source))
        self._counts[source] += 1
        return True

    def undo(self, source: str) -> None:
        """Take back the newest admission of ``source`` (a round that failed)."""
        for i in range(len(self._admitted) - 1, -1, -1):
            if self._admitted[i][1] == source:
                del self._admitted[i]
                self._counts[source] -= 1
                if not self._counts[source]:
                    del self._counts[source]
                return

    def shares(self) -> dict[str, int]:
        """Admitted labels per source in the interval up to the last label (the largest
        first). Read-only: health calls it from another thread."""
        return _top(self._counts)


def _top(counts: Counter[str]) -> dict[str, int]:
    snapshot = dict(counts)  # one C-level copy: the loop thread may be counting meanwhile
    return dict(sorted(snapshot.items(), key=lambda kv: -kv[1])[:REPORTED_SOURCES])


class RecentExamples:
    """The last ``size`` distinct (source, text, label) triples learned, as digests."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    @staticmethod
    def key(source: str, text: str, label: str) -> bytes:
        norm = " ".join(text.split()).casefold()  # a changed space or case is no new example
        return hashlib.blake2b(f"{source}\x00{label}\x00{norm}".encode(), digest_size=16).digest()

    def seen_before(self, source: str, text: str, label: str) -> bool:
        """True for a triple among the last ``size``; otherwise remembers it."""
        if not self.size:
            return False
        key = self.key(source, text, label)
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return False

    def forget(self, source: str, text: str, label: str) -> None:
        self._seen.pop(self.key(source, text, label), None)


class Admission:
    """The gate in front of training: ``verdict`` is None (learn it) or the skip reason.

    A round whose training raised is retried label by label by the batch loop: ``rollback``
    takes back what ``verdict`` counted since ``begin``, so a retried label is judged afresh
    (not taken for a replay of itself, nor charged twice to its source's share)."""

    def __init__(
        self, config: AdmissionConfig, name: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.name = name
        self.clock = clock
        self.share = SourceShare(config.max_share, config.window_s, clock)
        self.recent = RecentExamples(config.dedup_window)
        self.skipped: Counter[str] = Counter()  # by reason
        self.over_share: Counter[str] = Counter()  # by source, since start
        self._pending: Counter[str] = Counter()  # by source, not yet logged
        self._next_log = clock() + config.window_s
        self._round: list[tuple[str | None, str, str, str]] = []  # verdicts since ``begin``

    def begin(self) -> None:
        self._round.clear()

    def rollback(self) -> None:
        for reason, source, text, label in reversed(self._round):
            if reason is None:
                self.share.undo(source)
                self.recent.forget(source, text, label)
            else:
                self.skipped[reason] -= 1
                if reason == SOURCE_SHARE:
                    self.over_share[source] -= 1
                    self._pending[source] -= 1
        self.skipped, self.over_share, self._pending = (
            +self.skipped, +self.over_share, +self._pending  # drop the zeros
        )  # fmt: skip
        self._round.clear()

    def verdict(self, source: str, text: str, label: str) -> str | None:
        reason = self._judge(source, text, label)
        self._round.append((reason, source, text, label))
        if reason is not None:
            self.skipped[reason] += 1
        return reason

    def _judge(self, source: str, text: str, label: str) -> str | None:
        if not self.share.admit(source):
            self.over_share[source] += 1
            self._pending[source] += 1
            for counts in (self.over_share, self._pending):  # bounded under a flood of ids
                if len(counts) > TRACKED_SOURCES:
                    keep = counts.most_common(TRACKED_SOURCES // 2)
                    counts.clear()
                    counts.update(dict(keep))
            return SOURCE_SHARE
        if self.recent.seen_before(source, text, label):
            self.share.undo(source)  # not learned: it takes no share
            return DUPLICATE
        return None

    def log_due(self) -> None:
        """Once per interval: one line per source that went over its share in it."""
        now = self.clock()
        if now < self._next_log:
            return
        self._next_log = now + self.config.window_s
        pending, self._pending = self._pending, Counter()
        held = self.share.shares()
        for source, n in pending.most_common(LOGGED_SOURCES):
            log.warning(
                "source %r sent more labels for %s than its share (%.0f%% of the labels learned "
                "in %.0f s, never less than an equal split of the active sources): %d skipped "
                "in the last interval, %d learned in the current one; raise "
                "STREAMSENSE_LEARNER_SOURCE_MAX_SHARE if this source is meant to dominate",
                source, self.name, 100 * self.config.max_share, self.config.window_s, n,
                held.get(source, 0),
            )  # fmt: skip
        if len(pending) > LOGGED_SOURCES:
            log.warning(
                "%d more sources went over their share for %s in the last interval",
                len(pending) - LOGGED_SOURCES,
                self.name,
            )

    def report(self) -> dict[str, object]:
        """What health shows (any thread): skips by reason, the sources skipped most, the
        labels learned per source in the current interval."""
        return {
            "skipped": dict(self.skipped),
            "over_share_sources": _top(self.over_share),
            "learned_per_source": self.share.shares(),
            "max_share": self.config.max_share,
            "window_s": self.config.window_s,
        }
