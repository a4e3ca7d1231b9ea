"""Shared facts for the deployment tests (Dockerfile, compose, Kubernetes, docs).

The facts below are the platform's contract with its deployment files: the CLI's service
commands, the consumer groups and the topics they read. Tests check every deployment file
against them, and against the application code where that code exists.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VALIDATE = DEPLOY / "validate.sh"
TOOLS = Path(os.environ.get("STREAMSENSE_TOOLS_DIR", Path.home() / ".cache/streamsense/tools"))

#: Long-running service commands of the `streamsense` CLI (the words before any option).
SERVICE_COMMANDS = {
    ("produce", "camera"),
    ("produce", "text"),
    ("worker", "detect"),
    ("worker", "segment"),
    ("worker", "sentiment"),
    ("learner", "sentiment"),
    ("sink", "redis"),
    ("analytics",),
    ("gateway",),
}
#: One-shot commands.
JOB_COMMANDS = {("topics", "create"), ("models", "fetch"), ("samples", "make")}
ALL_COMMANDS = SERVICE_COMMANDS | JOB_COMMANDS

#: Worker command -> (consumer group, input topic).
WORKERS = {
    "detect": ("streamsense-detect", "frames"),
    "segment": ("streamsense-segment", "frames"),
    "sentiment": ("streamsense-sentiment", "text"),
}
#: Partitions of the input topics, as `streamsense topics create` makes them
#: (services/kafka/topics.py; read from there when it can be imported).
PARTITIONS_FALLBACK = {"frames": 6, "text": 3}

#: Environment variables a streamsense container may carry besides STREAMSENSE_*.
THIRD_PARTY_ENV = {
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "TF_CPP_MIN_LOG_LEVEL",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "PIP_INDEX_URL",
    "npm_config_registry",
}

#: Metric names the services export (prometheus_client adds `_total` to counters).
METRICS = {
    "streamsense_messages_consumed_total",
    "streamsense_messages_produced_total",
    "streamsense_dlq_total",
    "streamsense_batch_size",
    "streamsense_handler_seconds",
    "streamsense_consumer_lag",
    "streamsense_e2e_latency_seconds",
    "streamsense_producer_dropped_total",
}
METRIC_RE = re.compile(r"\bstreamsense_[a-z0-9_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def command_key(args: list[str]) -> tuple[str, ...]:
    """The command words of an argument list: [worker, detect, --x] -> (worker, detect)."""
    words: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
        if tuple(words) in ALL_COMMANDS:
            return tuple(words)
    return tuple(words)


def metric_base(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def topic_partitions() -> dict[str, int]:
    try:
        from streamsense.services.kafka.topics import TOPICS
    except Exception:  # not importable in this checkout: the documented numbers
        return dict(PARTITIONS_FALLBACK)
    return {t.name: t.partitions for t in TOPICS}


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
