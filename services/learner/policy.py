"""When a challenger may replace the champion: a pure function of the paired window, the
drift state and the clock, so it is tested without Kafka or TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

from streamsense.services.learner.prequential import WindowStats


@dataclass(frozen=True)
class PromotionPolicy:
    #: the challenger must beat the champion by this much accuracy (0.02 = 2 points)
    margin: float = 0.02
    #: on at least this many labels both scored
    min_samples: int = 200
    #: and at most one promotion per this many seconds
    min_interval_s: float = 30.0


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    stats: WindowStats


def decide(
    policy: PromotionPolicy,
    stats: WindowStats,
    now: float,
    last_promotion: float | None,
) -> Decision:
    """Promote only with enough samples, a large enough gain, and not too soon."""
    if stats.n < policy.min_samples:
        return Decision(False, f"{stats.n} paired labels < {policy.min_samples}", stats)
    summary = (
        f"challenger {stats.challenger:.3f} vs champion {stats.champion:.3f} "
        f"on the same {stats.n} recent labels"
    )
    if stats.gain < policy.margin - 1e-9:  # a gain of exactly the margin counts
        return Decision(False, f"{summary}: gain below the {policy.margin:.3f} margin", stats)
    if last_promotion is not None and now - last_promotion < policy.min_interval_s:
        wait = policy.min_interval_s - (now - last_promotion)
        return Decision(False, f"{summary}: next promotion allowed in {wait:.0f} s", stats)
    return Decision(True, f"{summary} (margin {policy.margin:.3f})", stats)
