"""Prometheus metrics of the learner, labeled by service and model."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ACCURACY = Gauge(
    "streamsense_learner_accuracy",
    "Prequential accuracy on the recent labels (sliding window)",
    ["service", "model", "role"],
)
LABELS = Counter(
    "streamsense_learner_labels", "Labeled examples scored and learned", ["service", "model"]
)
DRIFTS = Counter(
    "streamsense_learner_drift",
    "Changes in the champion's error rate (ADWIN)",
    ["service", "model"],
)
PROMOTIONS = Counter(
    "streamsense_learner_promotions", "Challengers promoted to champion", ["service", "model"]
)
REJECTIONS = Counter(
    "streamsense_learner_rejections",
    "Promotion checks with enough samples that kept the champion, and versions announced "
    "as rejected on models.updates",
    ["service", "model", "reason"],
)
SKIPPED = Counter(
    "streamsense_learner_skipped_labels",
    "Valid labels read but not learned (committed, not dead-lettered), by reason: "
    "source_share (the source was over its share), duplicate (a replay of a recent label), "
    "other_model (for another learner)",
    ["service", "model", "reason"],
)
TRAIN_SECONDS = Histogram(
    "streamsense_learner_train_seconds",
    "Training time per consumed batch",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
