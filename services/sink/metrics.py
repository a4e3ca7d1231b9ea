"""Metrics of the Redis sink (module-level singletons, labeled by ``service``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

WRITTEN = Counter(
    "streamsense_sink_written",
    "Results (kind = task) and thumbnails (kind = thumbnail) written to Redis",
    ["service", "kind"],
)
REDIS_SECONDS = Histogram(
    "streamsense_sink_redis_seconds",
    "Time of one pipelined Redis write (one per batch, retries excluded)",
    ["service"],
    buckets=_BUCKETS,
)
RETRIES = Counter(
    "streamsense_sink_redis_retries", "Batch writes sent again after a Redis error", ["service"]
)
REDIS_UP = Gauge("streamsense_sink_redis_up", "1 when the last Redis write succeeded", ["service"])
RESULT_AGE = Histogram(
    "streamsense_sink_result_age_seconds",
    "From the result handed to Kafka by its worker to the result written to Redis",
    ["service", "task"],
    buckets=_BUCKETS,
)
