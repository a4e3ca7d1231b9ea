"""The batch loop's health: red with the reasons whenever the service is not doing its job.

Red when the loop stopped or stalled, when Kafka refuses this client (credentials, ACLs, TLS),
when the cluster has been unreachable longer than ``STREAMSENSE_KAFKA_UNREACHABLE_GRACE_S``,
when an input or output topic is missing, when the consumer holds no partitions although its
topics have some (and it is not a standby), when an output cannot be delivered, and whenever
the handler says so (e.g. the sink's Redis is down).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from streamsense.services.observability import metrics

if TYPE_CHECKING:
    from streamsense.services.kafka.consumer import BatchLoop


def loop_problems(loop: BatchLoop[Any]) -> list[str]:
    """Why the loop is not doing its job right now (empty when it is)."""
    out = []
    if not loop.running:
        out.append("not running")
    age = time.monotonic() - loop.last_poll
    if loop.running and age > max(30.0, loop.config.max_poll_interval_ms / 1000 / 2):
        out.append(f"stalled: no poll for {age:.0f} s")
    if (error := loop.client.config_error()) is not None:
        out.append(f"kafka refuses this client: {error}")
    down = loop.client.unreachable_for()
    if down > loop.settings.kafka_unreachable_grace_s:
        out.append(
            f"kafka at {loop.settings.kafka_bootstrap} unreachable for {down:.0f} s "
            f"({loop.client.down_reason})"
        )
    if loop.watchdog.missing:
        out.append(
            f"topic(s) {', '.join(loop.watchdog.missing)} missing: run `streamsense topics create`"
        )
    if loop.watchdog.unassigned:
        out.append(loop.watchdog.unassigned)
    if loop.retrying is not None:
        out.append(f"{loop.retrying}; nothing past it is committed, retrying")
    return out


def loop_health(loop: BatchLoop[Any]) -> tuple[bool, dict[str, Any]]:
    problems = loop.problems()
    handler_ok, handler_detail = loop.handler.health()
    if not handler_ok:  # red says why in the one list an operator reads first
        problems.append(str(handler_detail.get("problem") or "the handler cannot do its job"))
    return not problems and handler_ok, {
        "service": loop.service,
        "problems": problems,
        "assigned": [f"{t}[{p}]" for t, p in loop.assignment],
        "last_poll_age_s": round(time.monotonic() - loop.last_poll, 3),
        "processed": loop.processed,
        "in_flight": loop.producer.in_flight,
        "delivery_error": loop.retrying,
        "kafka_error": loop.client.config_error(),
        "kafka_unreachable_s": round(loop.client.unreachable_for(), 1),
        "lag": sum(loop.lag.values()),
        "dead_lettered": loop.dead_lettered,
        **loop.delivery.state(),
        **handler_detail,
    }


def record_stats(loop: BatchLoop[Any], raw: str) -> None:
    """librdkafka's statistics: broker states (reachability) and consumer lag."""
    stats = orjson.loads(raw)
    loop.client.on_stats(stats)
    for topic, t in stats.get("topics", {}).items():
        for pid, p in t.get("partitions", {}).items():
            lag = p.get("consumer_lag", -1)
            if pid != "-1" and lag >= 0:
                metrics.CONSUMER_LAG.labels(loop.service, topic, pid).set(lag)
                loop.lag[f"{topic}[{pid}]"] = lag
