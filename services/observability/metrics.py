"""Metrics shared by every service, labeled by ``service``.

They are module-level singletons on the default registry (a metric can be registered once per
process); services tell themselves apart by the ``service`` label.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

MESSAGES_CONSUMED = Counter(
    "streamsense_messages_consumed", "Messages taken from Kafka", ["service", "topic"]
)
MESSAGES_PRODUCED = Counter(
    "streamsense_messages_produced", "Messages acknowledged by Kafka", ["service", "topic"]
)
PRODUCE_FAILED = Counter(
    "streamsense_produce_failed", "Messages Kafka finally refused", ["service", "topic"]
)
PRODUCER_DROPPED = Counter(
    "streamsense_producer_dropped",
    "Messages dropped by the backpressure policy (drop-oldest)",
    ["service", "topic"],
)
DLQ_TOTAL = Counter(
    "streamsense_dlq", "Messages routed to a dead-letter topic", ["service", "topic", "error"]
)
SKIPPED = Counter(
    "streamsense_skipped", "Inputs skipped on purpose (e.g. stale frames)", ["service", "reason"]
)
BATCH_SIZE = Histogram(
    "streamsense_batch_size", "Messages per handled batch", ["service"], buckets=_BATCH_BUCKETS
)
HANDLER_SECONDS = Histogram(
    "streamsense_handler_seconds", "Time to handle one batch", ["service"], buckets=_LATENCY_BUCKETS
)
MODEL_SECONDS = Histogram(
    "streamsense_model_seconds", "Model call time per batch", ["service"], buckets=_LATENCY_BUCKETS
)
E2E_LATENCY = Histogram(
    "streamsense_e2e_latency_seconds",
    "Capture (or read) time to result handed to Kafka",
    ["service"],
    buckets=_LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "streamsense_consumer_lag",
    "Consumer lag in messages, from librdkafka statistics",
    ["service", "topic", "partition"],
)
IN_FLIGHT = Gauge(
    "streamsense_producer_in_flight", "Messages produced but not yet acknowledged", ["service"]
)
