"""Exactly-once in the batch loop (KIP-447): outputs, dead letters and consumed offsets in one
transaction; a read_committed reader sees every input's output once, whatever dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import Producer
from streamsense.services.runner import running
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.kafka_helpers import EchoHandler, committed_offset


def _eo(settings: StreamsenseSettings) -> StreamsenseSettings:
    return settings.model_copy(update={"delivery": "exactly-once"})


def _produce(settings: StreamsenseSettings, topic: str, values: list[bytes]) -> None:
    p = Producer(settings)
    for v in values:
        p.produce(topic, v, key="k")
    assert p.flush(30) == 0
    p.close()


def read_committed(
    bootstrap: str, topic: str, settle_s: float = 2.0, expect: int = 0
) -> list[bytes]:
    """Everything committed on ``topic`` (partition 0), read until it is quiet once at least
    ``expect`` records have come (within 60 s: a killed process's open transaction holds
    read_committed readers back until the broker aborts it)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"rc-{uuid.uuid4().hex[:8]}",
                  "isolation.level": "read_committed", "enable.auto.commit": False})  # fmt: skip
    c.assign([TopicPartition(topic, 0, 0)])
    out: list[bytes] = []
    quiet_since = time.monotonic()
    patience = quiet_since + 60
    try:
        while time.monotonic() - quiet_since < settle_s or (
            len(out) < expect and time.monotonic() < patience
        ):
            msgs = [m for m in c.consume(500, 0.2) if m.error() is None]
            if msgs:
                quiet_since = time.monotonic()
            out += [m.value() or b"" for m in msgs]
    finally:
        c.close()
    return out


def test_outputs_dead_letters_and_offsets_commit_together(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    src, out = make_topic("eo"), make_topic("eoout")
    values = [b"bad-3" if i == 3 else f"m{i}".encode() for i in range(200)]
    _produce(settings, src, values)
    s = _eo(settings)
    loop = BatchLoop(s, LoopConfig([src], group_id, max_batch=16), EchoHandler(out))
    with running(loop):
        wait_for(
            lambda: committed_offset(s.kafka_bootstrap, group_id, src) == 200, 60, "200 committed"
        )
        ok, detail = loop.health()
        assert ok, detail["problems"]
        assert detail["delivery"] == "exactly-once" and detail["transactions"] >= 1
    got = read_committed(s.kafka_bootstrap, out)
    assert sorted(got) == sorted(v.upper() for v in values if not v.startswith(b"bad"))
    [dead] = read_committed(s.kafka_bootstrap, src + ".dlq")
    assert dead == b"bad-3"


def test_an_aborted_round_leaves_no_duplicates_for_read_committed_readers(
    settings: StreamsenseSettings, stack: dict[str, str], group_id: str
) -> None:
    """The dead-letter topic refuses the record, so every round that holds it is aborted and
    read again; the good outputs of those aborted rounds never reach a read_committed reader."""
    admin = AdminClient({"bootstrap.servers": stack["bootstrap"]})
    src, out = f"eoab.{group_id}", f"eoab.{group_id}.out"
    new = [NewTopic(src, 1, 1), NewTopic(out, 1, 1),
           NewTopic(src + ".dlq", 1, 1, config={"max.message.bytes": "100"})]  # fmt: skip
    for fut in admin.create_topics(new).values():
        fut.result()
    _produce(settings, src, [b"good-1", b"bad-poison", b"good-2"])
    s = _eo(settings)
    loop = BatchLoop(s, LoopConfig([src], group_id), EchoHandler(out))
    with running(loop):
        wait_for(lambda: loop.health()[1]["delivery_error"], 30, "a failed round")
        wait_for(lambda: loop.health()[1]["aborted"] >= 2, 30, "rounds aborted and retried")
        assert committed_offset(s.kafka_bootstrap, group_id, src) <= 0
        larger = ConfigEntry(
            "max.message.bytes", "1048576", incremental_operation=AlterConfigOpType.SET
        )
        resource = ConfigResource(
            ConfigResource.Type.TOPIC, src + ".dlq", incremental_configs=[larger]
        )
        admin.incremental_alter_configs([resource])[resource].result()
        wait_for(lambda: committed_offset(s.kafka_bootstrap, group_id, src) == 3, 60, "committed")
        wait_for(lambda: loop.health()[0], 20, "healthy again")
    assert Counter(read_committed(s.kafka_bootstrap, out)) == {b"GOOD-1": 1, b"GOOD-2": 1}
    assert read_committed(s.kafka_bootstrap, src + ".dlq") == [b"bad-poison"]


def _child(bootstrap: str, src: str, out: str, group: str) -> subprocess.Popen[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.loop_child", bootstrap, src, out, group, "0.02"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "STREAMSENSE_DELIVERY": "exactly-once",
            "STREAMSENSE_KAFKA_TRANSACTION_TIMEOUT_MS": "5000",
        },  # fmt: skip
    )


def test_kill_9_mid_stream_then_restart_gives_every_output_once(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    src, out = make_topic("eok"), make_topic("eokout")
    n = 300
    _produce(settings, src, [f"m{i}".encode() for i in range(n)])
    for _ in range(2):  # killed twice, mid-stream, each time after some rounds committed
        child = _child(settings.kafka_bootstrap, src, out, group_id)
        assert child.stdout is not None
        seen = 0
        for line in child.stdout:
            if line.startswith("processed"):
                seen += int(line.split()[1])
                if seen >= 60:
                    break
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    s = _eo(settings)
    loop = BatchLoop(s, LoopConfig([src], group_id), EchoHandler(out))
    with running(loop):
        wait_for(
            lambda: committed_offset(s.kafka_bootstrap, group_id, src) == n, 90, "all committed"
        )
    counts = Counter(read_committed(s.kafka_bootstrap, out, expect=n))
    missing = sorted(i for i in range(n) if f"M{i}".encode() not in counts)
    assert not missing, f"inputs without an output: {missing}"
    assert max(counts.values()) == 1, [v for v, c in counts.items() if c > 1][:5]
