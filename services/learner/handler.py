"""The learner plugged into the batch loop: labeled examples in, announcements out.

``prepare`` decodes ``LabeledText`` (in the loop's prefetch thread); ``process`` scores and
learns, runs a promotion check when one is due and, on promotion, writes the new version to
the store and returns its ``models.updates`` announcement as an output of the batch, so the
labels' offsets are committed only once the announcement was acknowledged. A message that is
not a valid LabeledText, whose label is not one of the model's classes, whose text is blank or
whose source is not allowed (``STREAMSENSE_LEARNER_SOURCES``) is dead-lettered; labels for other
models are skipped (another learner reads them), and so are labels over their source's share
and replays (:mod:`~streamsense.services.learner.admission`): counted, not learned, committed.

The model learns outside Kafka's transactions, so the handler is idempotent over the loop's
re-reads: when a round is not committed (an aborted transaction, an output not delivered) the
loop reads it again, and then a label learned already is not learned twice, while the label
that carried an announcement carries it again (the first one was aborted). After a crash the
same holds through the store: the champion's card names the label it learned last, and the
learner that starts from it announces it again if it reads that label again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message

from streamsense.models.exceptions import ModelError
from streamsense.models.store import ModelStore
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.registry import decode, encode
from streamsense.schemas.results import SourceRef
from streamsense.schemas.text import LabeledText
from streamsense.services.kafka.handler import BatchHandler, Outcome, OutRecord
from streamsense.services.kafka.model_updates import ModelUpdatesFollower
from streamsense.services.learner import metrics
from streamsense.services.learner.admission import Admission
from streamsense.services.learner.base import load_trainer
from streamsense.services.learner.exceptions import BlankTextError, UnknownSourceError
from streamsense.services.learner.online import OnlineLearner
from streamsense.services.learner.policy import Decision
from streamsense.services.learner.publish import announcement, store_trained
from streamsense.services.learner.settings import LearnerSettings

log = logging.getLogger(__name__)

#: Announcements kept with the label that carried them, for rounds read again (a rewind goes
#: back to the last committed round: far fewer promotions than this ago).
CARRIED_KEPT = 16


@dataclass(slots=True)
class Labeled:
    msg: Message
    example: LabeledText | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Promotion:
    version: str
    #: ``ts_ns`` of the label whose batch triggered the promotion (when it was produced)
    trigger_ts_ns: int
    announced_ns: int
    decision: Decision


Ref = tuple[str, int, int]  # topic, partition, offset


def _ref(msg: Message) -> Ref:
    return str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0)


def _ok(outcome: Outcome) -> bool:
    return not isinstance(outcome, BaseException)


@dataclass
class LearnerState:
    promotions: list[Promotion] = field(default_factory=list)
    published: set[str] = field(default_factory=set)
    skipped: int = 0
    #: the last offset processed, per partition: a label read again was learned already
    processed: dict[tuple[str, int], int] = field(default_factory=dict)
    #: announcements by the label whose batch carried them
    carried: dict[Ref, OutRecord] = field(default_factory=dict)
    #: labels read again (rounds not committed) and announcements sent again
    reread: int = 0
    reannounced: int = 0
    #: what keeps the learner from doing its job now, by area ("store", "update"): set by a
    #: failure, cleared by the next success of the same kind; health is false while any holds
    problems: dict[str, str] = field(default_factory=dict)
    store_failures: int = 0

    def is_new(self, ref: Ref) -> bool:
        return ref[2] > self.processed.get(ref[:2], -1)

    def carry(self, ref: Ref, record: OutRecord) -> None:
        self.carried[ref] = record
        while len(self.carried) > CARRIED_KEPT:
            del self.carried[next(iter(self.carried))]


class LearnerHandler(BatchHandler[list[Labeled]]):
    def __init__(
        self,
        settings: LearnerSettings,
        store: ModelStore,
        learner: OnlineLearner,
        updates: ModelUpdatesFollower | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.learner = learner
        self.updates = updates
        self.name = learner.name
        #: ``LabeledText.model`` values this learner takes: the model name or its task
        self.accepts = {self.name, settings.learner_task}
        self.state = LearnerState()
        self.admission = Admission(settings.admission(), self.name)
        self.allowed = frozenset(settings.learner_sources)
        service = settings.service_name
        self._skips = {
            reason: metrics.SKIPPED.labels(service, self.name, reason)
            for reason in ("other_model", "source_share", "duplicate")
        }
        self._acc = {
            role: metrics.ACCURACY.labels(service, self.name, role)
            for role in ("champion", "challenger")
        }
        self._labels = metrics.LABELS.labels(service, self.name)
        self._drifts = metrics.DRIFTS.labels(service, self.name)
        self._promotions = metrics.PROMOTIONS.labels(service, self.name)
        self._train_s = metrics.TRAIN_SECONDS.labels(service)
        self._carry_champion()

    def _carry_champion(self) -> None:
        """A crash between the store write and the commit of the announcement leaves the new
        champion stored but never announced; this learner starts from it and reads the label
        that carried its announcement again (nothing past the last committed round is
        committed): that label carries the announcement again. Were the round committed, the
        label is never read again and nothing is announced twice. The labels of its partition
        up to that one are in the champion already: read again, they are not learned again."""
        try:
            card = self.store.card(self.name, self.learner.champion_version)
        except ModelError:
            return
        ref = card.source.learned_until
        if ref is None or ref.topic != self.settings.labels_topic:
            return
        mv = announcement(self.store, card, "champion", card.source.notes)
        record = OutRecord(self.settings.updates_topic, encode(mv), key=self.name)
        self.state.carry((ref.topic, ref.partition, ref.offset), record)
        self.state.processed[(ref.topic, ref.partition)] = ref.offset
        self.state.published.add(card.version)

    def _reject(self, reason: str) -> None:
        metrics.REJECTIONS.labels(self.settings.service_name, self.name, reason).inc()

    # -- batch loop ---------------------------------------------------------------------------

    def prepare(self, messages: list[Message]) -> list[Labeled]:
        items = []
        knows = self.learner.champion.knows
        for m in messages:
            item = Labeled(m)
            try:
                ex = decode(m.value(), LabeledText)
                if ex.model in self.accepts:
                    self._check(ex, knows(ex.label))
                item.example = ex
            except Exception as exc:  # every reason becomes a dead letter
                item.error = exc
            items.append(item)
        return items

    def _check(self, ex: LabeledText, known: bool) -> None:
        """Raise (a dead letter with the reason) for a label this learner must not learn."""
        if self.allowed and ex.source_id not in self.allowed:
            msg = (
                f"source {ex.source_id!r} is not one of STREAMSENSE_LEARNER_SOURCES "
                f"({', '.join(sorted(self.allowed))}); add it there and replay this record "
                "if its labels are to be learned"
            )
            raise UnknownSourceError(msg[:1000])
        if not ex.text.strip():
            msg = "the text is blank (white space only): nothing to learn"
            raise BlankTextError(msg)
        if not known:
            self.learner.champion.encode_labels([ex.label])  # raises with the reason

    def process(self, prepared: list[Labeled]) -> list[Outcome]:
        state = self.state
        refs = [_ref(it.msg) for it in prepared]
        new = [state.is_new(ref) for ref in refs]
        state.reread += new.count(False)
        outcomes: list[Outcome] = [[] if it.error is None else it.error for it in prepared]
        for i, ref in enumerate(refs):
            if (record := state.carried.get(ref)) is not None and _ok(outcomes[i]):
                outcomes[i] = [record]  # the round that held it was not committed
                state.reannounced += 1
                log.warning("announcing again what %s[%d]@%d carried: its round was not "
                            "committed", *ref)  # fmt: skip
        fresh = [i for i, it in enumerate(prepared) if new[i] and it.example is not None]
        usable = [i for i in fresh if (ex := prepared[i].example) and ex.model in self.accepts]
        others = len(fresh) - len(usable)
        self.admission.begin()
        verdicts = [self._verdict(prepared[i]) for i in usable]
        try:
            if learned := [i for i, v in zip(usable, verdicts, strict=True) if v is None]:
                self._learn(prepared, refs, learned, outcomes)
        except Exception:  # the loop retries label by label: judge them afresh then
            self.admission.rollback()
            raise
        state.skipped += others
        self._skips["other_model"].inc(others)
        for v in verdicts:
            if v is not None:
                self._skips[v].inc()
        for topic, part, off in refs:  # only once learned: a batch that raised is retried
            if off > state.processed.get((topic, part), -1):
                state.processed[(topic, part)] = off
        return outcomes

    def _verdict(self, item: Labeled) -> str | None:
        """None: learn it; else why it is skipped (its source's share, a replay)."""
        ex = item.example
        assert ex is not None  # noqa: S101 - filtered by the caller
        return self.admission.verdict(ex.source_id, ex.text, ex.label)

    def _learn(
        self, prepared: list[Labeled], refs: list[Ref], usable: list[int], outcomes: list[Outcome]
    ) -> None:
        examples = [ex for i in usable if (ex := prepared[i].example) is not None]
        t0 = time.perf_counter()
        y = self.learner.champion.encode_labels([ex.label for ex in examples])
        drifts = self.learner.observe(
            [ex.text for ex in examples], y, [ex.source_id for ex in examples]
        )
        self._train_s.observe(time.perf_counter() - t0)
        self._labels.inc(len(examples))
        if drifts:
            self._drifts.inc(drifts)
        decision = self.learner.check()
        if decision is not None:
            last, ref = usable[-1], refs[usable[-1]]
            carrier = SourceRef(topic=ref[0], partition=ref[1], offset=ref[2])
            record = self._decide(decision, examples[-1], carrier)
            if record is not None:
                before = outcomes[last]  # a re-announcement it carries already comes first
                if isinstance(before, BaseException):
                    before = []
                outcomes[last] = [*before, record]
                self.state.carry(ref, record)
        stats = self.learner.window.stats()
        if stats.n:
            self._acc["champion"].set(stats.champion)
            self._acc["challenger"].set(stats.challenger)

    def _decide(
        self, decision: Decision, trigger: LabeledText, carrier: SourceRef
    ) -> OutRecord | None:
        if not decision.promote:
            if decision.stats.n >= self.learner.policy.min_samples:
                self._reject("margin" if "margin" in decision.reason else "interval")
                log.debug(
                    "champion %s@%s stays: %s",
                    self.name,
                    self.learner.champion_version,
                    decision.reason,
                )
            return None
        try:
            mv = self._publish(decision, carrier)
        except Exception as exc:  # the champion keeps serving; learning goes on
            log.error("could not store the challenger of %s: %s", self.name, exc)
            self._reject("store")
            self.state.store_failures += 1
            self.state.problems["store"] = (
                f"could not store the challenger that should replace {self.name}@"
                f"{self.learner.champion_version} ({type(exc).__name__}: {exc}); the champion "
                "keeps serving, the next promotion check tries again"
            )[:1000]
            return None
        self.state.problems.pop("store", None)
        self.state.promotions.append(
            Promotion(mv.model_version, trigger.ts_ns, mv.created_ns, decision)
        )
        self._promotions.inc()
        log.info("promoted %s@%s: %s", self.name, mv.model_version, decision.reason)
        return OutRecord(self.settings.updates_topic, encode(mv), key=self.name)

    def _publish(self, decision: Decision, carrier: SourceRef) -> ModelVersion:
        learner = self.learner
        parent = self.store.card(self.name, learner.champion_version)
        stats = decision.stats
        scores = {
            "prequential_accuracy": stats.challenger,
            "prequential_champion_accuracy": stats.champion,
            "prequential_samples": float(stats.n),
            "labels_learned": float(learner.totals.labels),
        }
        card = store_trained(
            self.store,
            learner.challenger,
            parent,
            scores,
            f"online learner: challenger of {self.name}@{learner.champion_version} after "
            f"{learner.totals.labels} labels; {decision.reason}",
            learned_until=carrier,
        )
        self.state.published.add(card.version)
        learner.promoted(card.version)
        return announcement(self.store, card, "champion", decision.reason)

    def between_batches(self) -> None:
        self.admission.log_due()
        if self.updates is None:
            return
        for mv in self.updates.poll():
            self._on_update(mv)

    def _on_update(self, mv: ModelVersion) -> None:
        mine = mv.model_version in self.state.published
        if mv.stage == "rejected":
            self._reject("announced")
            log.error("%s@%s was announced as rejected: %s", mv.name, mv.model_version, mv.reason)
            return
        if mv.stage != "champion" or mine or mv.model_version == self.learner.champion_version:
            return
        log.info(
            "%s@%s became champion elsewhere (%s): restarting the challenger from it",
            mv.name,
            mv.model_version,
            mv.reason,
        )
        try:
            _, trainer = load_trainer(
                self.store, mv.name, mv.model_version, self.settings.learner_learning_rate
            )
        except Exception as exc:
            log.error(
                "cannot load %s@%s: %s; keeping %s",
                mv.name,
                mv.model_version,
                exc,
                self.learner.champion_version,
            )
            self.state.problems["update"] = (
                f"{mv.name}@{mv.model_version} became champion but cannot be loaded for "
                f"training ({type(exc).__name__}: {exc}); still learning from "
                f"{self.learner.champion_version}"
            )[:1000]
            return
        self.learner.replace_champion(trainer, mv.model_version)
        self.state.problems.pop("update", None)

    def summary(self) -> dict[str, Any]:
        skipped = self.admission.skipped
        return {"over_share": skipped["source_share"], "replays": skipped["duplicate"]}

    def close(self) -> None:
        if self.updates is not None:
            self.updates.close()

    # -- health -------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """False while a challenger could not be stored or an announced champion could not be
        loaded (``learner.problems`` says which and why)."""
        problems = sorted(self.state.problems.values())
        detail: dict[str, Any] = {"learner": self.state_report()}
        if problems:
            detail["problem"] = "; ".join(problems)
        return not problems, detail

    def state_report(self) -> dict[str, Any]:
        """Champion, window accuracies, labels seen, drift, promotions."""
        learner = self.learner
        stats = learner.window.stats()
        t = learner.totals
        return {
            "model": self.name,
            "champion": learner.champion_version,
            "window": {"n": stats.n, "champion": stats.champion, "challenger": stats.challenger},
            "labels": t.labels,
            "skipped_other_models": self.state.skipped,
            "admission": self.admission.report(),
            "train_s": round(t.train_s, 3),
            "drift_detections": learner.drift.detections,
            "fast_checks": learner.fast_checks,
            "promotions": [p.version for p in self.state.promotions],
            "store_failures": self.state.store_failures,
            "problems": sorted(self.state.problems.values()),
            "last_decision": None
            if learner.last_decision is None
            else learner.last_decision.reason,
        }
