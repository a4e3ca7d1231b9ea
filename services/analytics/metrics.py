"""Prometheus metrics of the analytics app (the shared ones live in
streamsense.services.observability)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS = Counter(
    "streamsense_analytics_events",
    "Results applied to the analytics tables",
    ["service", "kind"],
)
DUPLICATES = Counter(
    "streamsense_analytics_duplicates",
    "Redelivered results skipped because the table already includes their offset",
    ["service", "topic"],
)
LATE = Counter(
    "streamsense_analytics_late",
    "Results whose event time fell in an already closed window",
    ["service", "kind"],
)
GAPS = Counter(
    "streamsense_analytics_input_gaps",
    "Input offsets the consumer skipped (never delivered to the agent)",
    ["service", "topic"],
)
LABELS_OVER = Counter(
    "streamsense_analytics_labels_over",
    "Detections/messages not counted under their own label: their source had the most labels"
    " counted per source (STREAMSENSE_ANALYTICS_MAX_LABELS)",
    ["service", "kind"],
)
SOURCES_OVER = Counter(
    "streamsense_analytics_sources_over",
    "Results of new sources not analysed: the worker kept the most sources"
    " (STREAMSENSE_ANALYTICS_MAX_SOURCES)",
    ["service", "kind"],
)
WINDOWS = Counter(
    "streamsense_analytics_windows",
    "Windows closed and emitted",
    ["service", "kind", "window"],
)
ALERTS = Counter("streamsense_analytics_alerts", "Alerts fired", ["service", "rule"])
SOURCES = Gauge("streamsense_analytics_sources", "Sources held in the tables", ["service", "kind"])
RECOVERY_SECONDS = Gauge(
    "streamsense_analytics_recovery_seconds",
    "Seconds from process start until the tables were recovered (last rebalance)",
    ["service"],
)
REDIS_ERRORS = Counter(
    "streamsense_analytics_redis_errors", "Failed Redis flushes (retried)", ["service"]
)
REDIS_DROPPED = Counter(
    "streamsense_analytics_redis_dropped",
    "Alerts dropped from the Redis buffer during a long Redis outage",
    ["service"],
)
