"""The batch loop's health tells the truth, and an output it cannot deliver is retried, never
skipped and never a crash: against the session's real broker (or a closed port)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import Producer
from streamsense.services.local import procs
from streamsense.services.runner import running
from streamsense.services.settings import StreamsenseSettings
from tests.conftest import wait_for
from tests.kafka_helpers import EchoHandler, committed_offset, read_all


def _problems(loop: BatchLoop[object]) -> str:
    return " | ".join(loop.health()[1]["problems"])


def test_an_unreachable_broker_is_red_after_the_grace_and_logged_once_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = StreamsenseSettings(
        kafka_bootstrap=f"127.0.0.1:{procs.free_port()}",
        kafka_unreachable_grace_s=1.0,
        service_name="health-unreachable",
    )
    loop = BatchLoop(
        settings,
        LoopConfig(["t"], "g-unreachable", delivery="at-least-once"),
        EchoHandler("o"),
        Producer(settings),
    )
    caplog.set_level(logging.INFO)
    with running(loop):
        wait_for(lambda: "unreachable for" in _problems(loop), 20, "health to say why")
        time.sleep(3)  # librdkafka retries several times a second meanwhile: count the lines
        ok, detail = loop.health()
    assert not ok and detail["kafka_unreachable_s"] >= 1
    assert settings.kafka_bootstrap in _problems_text(detail)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    about = [r for r in noisy if "unreachable" in r.getMessage()]
    assert len(about) == 1, [r.getMessage() for r in noisy]
    assert len(noisy) <= 3, [r.getMessage() for r in noisy]


def _problems_text(detail: dict[str, object]) -> str:
    return " | ".join(detail["problems"])  # type: ignore[arg-type]


def test_a_missing_input_topic_is_red_with_the_fix_until_it_exists(
    settings: StreamsenseSettings, stack: dict[str, str], group_id: str
) -> None:
    topic = f"missing.{group_id}"
    loop = BatchLoop(
        settings,
        LoopConfig([topic], group_id, delivery="at-least-once"),
        EchoHandler("o"),
        Producer(settings),
    )
    with running(loop):
        wait_for(lambda: f"topic(s) {topic}" in _problems(loop), 20, "the missing topic")
        assert "streamsense topics create" in _problems(loop)
        assert not loop.health()[0]
        admin = AdminClient({"bootstrap.servers": stack["bootstrap"]})
        new = [NewTopic(topic, 1, 1), NewTopic(topic + ".dlq", 1, 1)]
        for fut in admin.create_topics(new).values():
            fut.result()
        wait_for(lambda: loop.health()[0], 30, "health once the topic exists", loop.health)


def test_no_partitions_is_red_while_a_dead_member_still_holds_them(
    settings: StreamsenseSettings, make_topic: Callable[..., str], group_id: str
) -> None:
    """A static member that stops does not leave the group: its replacement (another id)
    waits out the session, holding nothing, and says so instead of reporting healthy."""
    src = make_topic("held")
    # the dead member's session outlasts the watchdog's grace and its next check (3 + 5 s)
    base = settings.model_copy(update={"kafka_session_timeout_ms": 12_000})
    first = BatchLoop(
        base.model_copy(update={"kafka_group_instance_id": "first"}),
        LoopConfig([src], group_id, delivery="at-least-once"),
        EchoHandler("o"),
        Producer(base),
    )
    with running(first):
        wait_for(lambda: first.assignment, 20, "the first member's assignment")
    second = BatchLoop(
        base.model_copy(update={"kafka_group_instance_id": "second"}),
        LoopConfig([src], group_id, delivery="at-least-once"),
        EchoHandler("o"),
        Producer(base),
    )
    with running(second):
        wait_for(lambda: "no partitions assigned" in _problems(second), 15, "red while unassigned")
        assert not second.health()[0]
        wait_for(lambda: second.assignment and second.health()[0], 30, "green once it holds them")


def test_a_dead_letter_that_cannot_be_written_is_retried_never_skipped_never_a_crash(
    settings: StreamsenseSettings, stack: dict[str, str], group_id: str
) -> None:
    """The dead-letter topic refuses the record (its limit is 100 bytes): the loop keeps
    running, health is red with the reason, nothing at or past the poison record is
    committed; once the topic accepts it, the dead letter is written and the loop goes on."""
    admin = AdminClient({"bootstrap.servers": stack["bootstrap"]})
    src, out = f"dl.{group_id}", f"dl.{group_id}.out"
    new = [
        NewTopic(src, 1, 1),
        NewTopic(out, 1, 1),
        NewTopic(src + ".dlq", 1, 1, config={"max.message.bytes": "100"}),
    ]
    for fut in admin.create_topics(new).values():
        fut.result()
    p = Producer(settings)
    for v in (b"good-1", b"bad-poison", b"good-2"):
        p.produce(src, v, key="k")
    assert p.flush(30) == 0
    p.close()
    loop = BatchLoop(
        settings,
        LoopConfig([src], group_id, delivery="at-least-once"),
        EchoHandler(out),
        Producer(settings),
    )
    with running(loop):
        wait_for(lambda: "not delivered" in _problems(loop), 30, "red with the reason")
        assert f"{src}.dlq" in _problems(loop) and "nothing past it is committed" in _problems(loop)
        time.sleep(2)  # a few retries with backoff: still running, still nothing committed
        assert loop.running and committed_offset(stack["bootstrap"], group_id, src) == 0
        resource = ConfigResource(
            ConfigResource.Type.TOPIC,
            src + ".dlq",
            incremental_configs=[
                ConfigEntry(
                    "max.message.bytes", "1048576", incremental_operation=AlterConfigOpType.SET
                )
            ],
        )
        admin.incremental_alter_configs([resource])[resource].result()
        wait_for(
            lambda: committed_offset(stack["bootstrap"], group_id, src) == 3,
            60,
            "all three committed",
        )
        wait_for(lambda: loop.health()[0], 20, "healthy again")
    [dead] = read_all(stack["bootstrap"], src + ".dlq", 1)
    assert dead.value() == b"bad-poison"
    info = DeadLetterInfo.from_kafka_headers(dead.headers())
    assert (info.original_topic, info.original_offset) == (src, 1)
    served = {m.value() for m in read_all(stack["bootstrap"], out, 2)}
    assert served == {b"GOOD-1", b"GOOD-2"}


def test_a_consuming_service_logs_a_one_line_summary(
    settings: StreamsenseSettings,
    make_topic: Callable[..., str],
    group_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    src, out = make_topic("sum"), make_topic("sumout")
    p = Producer(settings)
    for i in range(20):
        p.produce(src, b"bad" if i == 3 else b"x", key="k")
    assert p.flush(30) == 0
    p.close()
    quick = settings.model_copy(update={"log_summary_s": 0.5})
    loop = BatchLoop(
        quick,
        LoopConfig([src], group_id, delivery="at-least-once"),
        EchoHandler(out),
        Producer(quick),
    )
    caplog.set_level(logging.INFO)
    with running(loop):
        wait_for(lambda: loop.processed >= 20, 30, "20 processed")
        wait_for(
            lambda: any("dead letters 1" in r.getMessage() for r in caplog.records),
            10,
            "a summary that counts the dead letter",
        )
    line = next(r.getMessage() for r in caplog.records if "dead letters 1" in r.getMessage())
    assert "msg/s" in line and "batch" in line and "lag" in line
