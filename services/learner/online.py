"""The online learner without Kafka: prequential scoring, bounded incremental training,
drift-triggered promotion checks.

``observe`` scores a batch of labeled inputs with the champion and the challenger, feeds
the champion's errors to ADWIN, then trains the challenger a bounded number of small steps,
each mixing the new labels with a sample from the replay buffer. ``check`` says whether the
challenger should now replace the champion (see :mod:`streamsense.services.learner.policy`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamsense.services.learner.base import TrainingAdapter
from streamsense.services.learner.policy import Decision, PromotionPolicy, decide
from streamsense.services.learner.prequential import DriftMonitor, PairedWindow, WindowStats
from streamsense.services.learner.replay import ReplayBuffer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    #: examples per gradient step
    step_size: int = 32
    #: share of each step drawn from the replay buffer (earlier labels)
    replay_fraction: float = 0.5
    #: gradient steps per consumed batch, at most ...
    max_steps: int = 8
    #: ... and at most this long (keeps a batch far below max.poll.interval.ms)
    budget_s: float = 2.0
    replay_capacity: int = 4000
    #: most of the replay buffer one source may hold (never below an equal split)
    source_max_share: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class CheckConfig:
    #: sliding window of paired outcomes compared for a regular check
    window: int = 500
    #: labels between regular promotion checks
    check_every: int = 250
    #: ADWIN confidence; a detection makes every batch a check, on the labels since the change
    drift_delta: float = 0.002


@dataclass
class Observed:
    """Cumulative counters since start (for health, metrics and benchmarks)."""

    labels: int = 0
    champion_correct: int = 0
    challenger_correct: int = 0
    steps: int = 0
    train_s: float = 0.0
    skipped_steps: int = 0


class OnlineLearner:
    def __init__(
        self,
        name: str,
        champion: TrainingAdapter[Any],
        champion_version: str,
        *,
        training: TrainingConfig | None = None,
        checks: CheckConfig | None = None,
        policy: PromotionPolicy | None = None,
        keep_trace: bool = False,
    ) -> None:
        self.training = training or TrainingConfig()
        self.checks = checks or CheckConfig()
        self.policy = policy or PromotionPolicy()
        self.name = name
        self.champion = champion
        self.champion_version = champion_version
        self.challenger = champion.clone()
        self.window = PairedWindow(self.checks.window)
        self.drift = DriftMonitor(self.checks.drift_delta)
        self.replay: ReplayBuffer[Any] = ReplayBuffer(
            self.training.replay_capacity, self.training.seed, self.training.source_max_share
        )
        self.totals = Observed()
        self.fast_checks = False  # set by a drift detection, cleared by a promotion
        self.last_promotion: float | None = None
        self.last_decision: Decision | None = None
        self._since_check = 0
        #: (champion ok, challenger ok) per label, when ``keep_trace`` (benchmarks, tests)
        self.trace: list[tuple[bool, bool]] | None = [] if keep_trace else None

    @property
    def labels(self) -> list[str]:
        return self.champion.labels

    # -- learning ---------------------------------------------------------------------------

    def observe(
        self, inputs: Sequence[Any], y: np.ndarray, sources: Sequence[str] | None = None
    ) -> int:
        """Score ``inputs`` with both models, then learn from them. Returns drift detections.
        ``sources``: where each label came from (the replay buffer bounds each one's share)."""
        if len(inputs) == 0:
            return 0
        champ_ok = self.champion.predict(inputs).argmax(axis=1) == y
        chall_ok = self.challenger.predict(inputs).argmax(axis=1) == y
        # scored before learning (prequential), counted only once learned: a round that
        # raises is retried label by label, and must not be counted twice
        self._learn(list(inputs), y, sources)
        drifts = 0
        for a, b in zip(champ_ok.tolist(), chall_ok.tolist(), strict=True):
            self.window.record(a, b)
            if self.drift.update(not a):
                drifts += 1
            if self.trace is not None:
                self.trace.append((a, b))
        if drifts:
            log.info(
                "drift in %s@%s's error rate (now %.3f): checking for promotion every batch",
                self.name,
                self.champion_version,
                self.drift.error_rate,
            )
            self.fast_checks = True
        t = self.totals
        t.labels += len(inputs)
        t.champion_correct += int(champ_ok.sum())
        t.challenger_correct += int(chall_ok.sum())
        self._since_check += len(inputs)
        return drifts

    def _learn(self, inputs: list[Any], y: np.ndarray, sources: Sequence[str] | None) -> None:
        cfg = self.training
        fresh = max(1, round(cfg.step_size * (1 - cfg.replay_fraction)))
        steps = min(cfg.max_steps, math.ceil(len(inputs) / fresh))
        # spread the batch over the allowed steps (a large batch gets larger fresh parts)
        per_step = math.ceil(len(inputs) / steps)
        start = time.perf_counter()
        for i in range(steps):
            if time.perf_counter() - start > cfg.budget_s:
                self.totals.skipped_steps += steps - i
                break
            xs = inputs[i * per_step : (i + 1) * per_step]
            ys = [int(v) for v in y[i * per_step : (i + 1) * per_step]]
            rx, ry = self.replay.sample(max(0, cfg.step_size - len(xs)))
            self.challenger.train_step(xs + rx, np.asarray(ys + ry, dtype=np.int64))
            self.totals.steps += 1
        self.totals.train_s += time.perf_counter() - start
        self.replay.add(inputs, [int(v) for v in y], sources)

    # -- promotion --------------------------------------------------------------------------

    def comparison(self) -> WindowStats:
        """The paired stats a check looks at: the labels since the drift when in fast mode
        (and there are enough of them), else the whole sliding window."""
        since = self.drift.since_drift
        if self.fast_checks and since is not None and since >= self.policy.min_samples:
            return self.window.stats(last=since)
        return self.window.stats()

    def check(self, now: float | None = None) -> Decision | None:
        """A promotion decision when a check is due (after drift: every batch), else None."""
        if not self.fast_checks and self._since_check < self.checks.check_every:
            return None
        self._since_check = 0
        now = time.monotonic() if now is None else now
        decision = decide(self.policy, self.comparison(), now, self.last_promotion)
        self.last_decision = decision
        return decision

    def promoted(self, version: str, now: float | None = None) -> None:
        """The challenger was stored and announced as ``version``: it becomes the champion
        (a frozen copy) and keeps learning as the next challenger."""
        self.champion = self.challenger.clone()
        self.champion_version = version
        self.last_promotion = time.monotonic() if now is None else now
        self._restart()

    def replace_champion(self, champion: TrainingAdapter[Any], version: str) -> None:
        """A champion chosen elsewhere (``models promote``/``rollback``): restart from it."""
        self.champion = champion
        self.champion_version = version
        self.challenger = champion.clone()
        self._restart()

    def _restart(self) -> None:
        self.window.reset()
        self.drift.reset()
        self.fast_checks = False
        self._since_check = 0
