"""The text producer against the real broker: several files, new files, rotation, truncation,
flags, the DLQ for --json-field, checkpoints and their reconciliation with the topic."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import decode
from streamsense.schemas.text import TextEvent
from streamsense.services.cli.app import app
from streamsense.services.producers.settings import TextProducerSettings
from streamsense.services.producers.text import TextProducer
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.producers.conftest import topic_size
from tests.raw_headers import produce_raw

pytestmark = pytest.mark.integration


def text_settings(stack: dict[str, str], topic: str, ckpt: Path, **kw: Any) -> TextProducerSettings:
    base: dict[str, Any] = {
        "text_rotate_grace_s": 0.3,
        "text_poll_interval_s": 0.1,
        "text_checkpoint_interval_s": 0.05,
    }
    return TextProducerSettings(
        kafka_bootstrap=stack["bootstrap"],
        text_topic=topic,
        text_checkpoint=ckpt,
        service_name=f"test-text-{uuid.uuid4().hex[:6]}",
        **{**base, **kw},
    )


def events(bootstrap: str, topic: str, n: int) -> list[TextEvent]:
    return [decode(m.value(), TextEvent) for m in read_all(bootstrap, topic, n, timeout=20)]


class Following:
    """A follow-mode producer in a thread."""

    def __init__(self, producer: TextProducer) -> None:
        self.producer = producer
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.producer.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def acked(self, n: int) -> None:
        wait_for(lambda: self.producer.producer.acked >= n or self.error, 20, f"{n} lines acked")
        assert self.error is None, self.error

    def stop(self) -> None:
        self.producer.stop_event.set()
        self.thread.join(15)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def append(path: Path, *lines: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines)


def test_several_files_and_files_created_later_are_followed(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", "a0", "a1", "a2")
    append(logs / "b.log", "b0", "b1")
    (logs / "skip.txt").write_text("not matched\n")
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    run = Following(TextProducer(s, pattern=str(logs / "*.log"), follow=True))
    run.acked(5)
    append(logs / "c.log", "c0", "c1")
    append(logs / "a.log", "a3")
    run.acked(8)
    run.stop()
    got = events(s.kafka_bootstrap, topic, 8)
    assert topic_size(s.kafka_bootstrap, topic) == 8
    by_source: dict[str, list[TextEvent]] = {}
    for e in got:
        by_source.setdefault(e.source_id, []).append(e)
    assert {k: [e.text for e in v] for k, v in by_source.items()} == {
        "a.log": ["a0", "a1", "a2", "a3"],
        "b.log": ["b0", "b1"],
        "c.log": ["c0", "c1"],
    }
    for source, evs in by_source.items():
        assert [e.seq for e in evs] == list(range(len(evs)))
        data = (logs / source).read_bytes()
        for e in evs:
            assert e.path == str(logs / source)
            assert e.position is not None
            assert data[e.position :].startswith(e.text.encode())
            assert e.flags == []


def test_rotation_finishes_the_old_file_then_follows_the_new_one(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    log = tmp_path / "app.log"
    append(log, *(f"old-{i}" for i in range(5)))
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    run = Following(TextProducer(s, pattern=str(log), follow=True))
    run.acked(5)
    with open(log, "a", encoding="utf-8") as writer:  # the application's open file
        writer.write("old-5\n")
        writer.flush()
        log.rename(tmp_path / "app.log.1")  # logrotate: rename, create
        append(log, *(f"new-{i}" for i in range(3)))
        writer.write("old-6 written after the rename\n")  # before the app reopens its log
    run.acked(10)
    append(log, "new-3")
    run.acked(11)
    run.stop()
    got = events(s.kafka_bootstrap, topic, 11)
    assert topic_size(s.kafka_bootstrap, topic) == 11
    texts = [e.text for e in got]
    assert [t for t in texts if t.startswith("old")] == [
        *(f"old-{i}" for i in range(6)),
        "old-6 written after the rename",
    ]
    assert [t for t in texts if t.startswith("new")] == [f"new-{i}" for i in range(4)]
    assert [e.seq for e in got] == list(range(11)), "one source, seq goes on across rotation"
    assert run.producer.snapshot()["rotations"] == 1
    new_positions = [e.position for e in got if e.text.startswith("new")]
    assert new_positions == [0, 6, 12, 18]


def test_truncation_restarts_from_the_beginning(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    log = tmp_path / "app.log"
    append(log, *(f"before truncation {i}" for i in range(4)))
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    run = Following(TextProducer(s, pattern=str(log), follow=True))
    run.acked(4)
    with open(log, "w", encoding="utf-8") as fh:  # copytruncate
        fh.write("after 0\nafter 1\n")
    run.acked(6)
    run.stop()
    got = events(s.kafka_bootstrap, topic, 6)
    assert [e.text for e in got[4:]] == ["after 0", "after 1"]
    assert [e.position for e in got[4:]] == [0, 8]
    assert run.producer.snapshot()["truncations"] == 1


def test_invalid_utf8_long_blank_and_unterminated_lines_are_visible(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    log = tmp_path / "odd.log"
    long_line = "é" * 150  # 300 bytes
    log.write_bytes(
        b"fine\n"
        + b"bad \xff\xfe bytes\n"
        + long_line.encode()
        + b"\n"
        + b"  \n"
        + b"last, no newline"
    )
    s = text_settings(stack, topic, tmp_path / "ckpt.json", text_max_line_bytes=101)
    producer = TextProducer(s, pattern=str(log))
    stats = producer.run()
    assert (stats.lines, stats.sent, stats.blank) == (5, 4, 1)
    assert (stats.invalid_utf8, stats.truncated, stats.dlq) == (1, 1, 0)
    got = events(s.kafka_bootstrap, topic, 4)
    assert [(e.text, e.flags) for e in got] == [
        ("fine", []),
        ("bad \ufffd\ufffd bytes", ["invalid-utf8-replaced"]),
        ("é" * 50, ["truncated"]),  # 101 bytes cut back to a whole character: 100
        ("last, no newline", []),
    ]
    assert [e.position for e in got] == [0, 5, 18, 322]


def test_json_lines_without_the_field_go_to_the_dlq_with_the_reason(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    log = tmp_path / "app.jsonl"
    lines = [
        b'{"msg": "checkout ok", "level": "info"}',
        b"plain words",
        b'{"level": "warn"}',
        b'{"msg": 42}',
        b'{"msg": "second good one"}',
    ]
    log.write_bytes(b"\n".join(lines) + b"\n")
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    stats = TextProducer(s, pattern=str(log), json_field="msg", source_id="shop").run()
    assert (stats.sent, stats.dlq) == (2, 3)
    got = events(s.kafka_bootstrap, topic, 2)
    assert [(e.text, e.source_id, e.seq) for e in got] == [
        ("checkout ok", "shop", 0),
        ("second good one", "shop", 1),
    ]
    dead = read_all(s.kafka_bootstrap, topic + ".dlq", 3)
    assert [m.value() for m in dead] == lines[1:4]
    assert {m.key() for m in dead} == {b"shop"}
    infos = [DeadLetterInfo.from_kafka_headers(m.headers()) for m in dead]
    assert [i.error_class for i in infos] == [
        "NotJsonError",
        "MissingFieldError",
        "MissingFieldError",
    ]
    assert "no field 'msg'" in infos[1].error_message
    assert "is a int" in infos[2].error_message
    offsets = [sum(len(x) + 1 for x in lines[:i]) for i in (1, 2, 3)]
    assert [(i.original_topic, i.original_partition, i.original_offset) for i in infos] == [
        (topic, -1, o) for o in offsets
    ]
    assert all(i.service == s.service_name for i in infos)
    assert dict(dead[0].headers())["ss-src-path"] == str(log).encode()


def test_a_second_run_sends_only_new_lines(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    log = tmp_path / "app.log"
    append(log, "one", "two")
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    assert TextProducer(s, pattern=str(log)).run().sent == 2
    assert TextProducer(s, pattern=str(log)).run().sent == 0
    append(log, "three")
    assert TextProducer(s, pattern=str(log)).run().sent == 1
    got = events(s.kafka_bootstrap, topic, 3)
    assert [(e.text, e.seq) for e in got] == [("one", 0), ("two", 1), ("three", 2)]
    assert topic_size(s.kafka_bootstrap, topic) == 3


def test_a_checkpoint_behind_the_topic_is_reconciled_so_nothing_repeats(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    """A crash between Kafka's acknowledgement and the checkpoint write leaves the checkpoint
    behind; on restart the records' ``ss-src`` headers move it forward."""
    topic = make_topic("text")
    log = tmp_path / "app.log"
    ckpt = tmp_path / "ckpt.json"
    append(log, *(f"line {i}" for i in range(20)))
    s = text_settings(stack, topic, ckpt)
    TextProducer(s, pattern=str(log)).run()
    shutil.copy(ckpt, tmp_path / "ckpt.old")
    append(log, *(f"line {i}" for i in range(20, 50)))
    TextProducer(s, pattern=str(log)).run()
    shutil.copy(tmp_path / "ckpt.old", ckpt)  # as if the last 30 acks never reached the disk
    assert TextProducer(s, pattern=str(log)).run().sent == 0
    append(log, "line 50")
    assert TextProducer(s, pattern=str(log)).run().sent == 1
    got = events(s.kafka_bootstrap, topic, 51)
    assert [e.text for e in got] == [f"line {i}" for i in range(51)]
    assert [e.seq for e in got] == list(range(51))
    assert topic_size(s.kafka_bootstrap, topic) == 51


def test_without_reconciliation_repeats_are_recognisable(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    """The honest fallback (window too small, scan disabled): at-least-once, and a repeated line
    has the same source, path, position and seq, so consumers can drop it."""
    topic = make_topic("text")
    log = tmp_path / "app.log"
    ckpt = tmp_path / "ckpt.json"
    append(log, "a", "b")
    s = text_settings(stack, topic, ckpt, text_reconcile_scan=0)
    TextProducer(s, pattern=str(log)).run()
    shutil.copy(ckpt, tmp_path / "ckpt.old")
    append(log, "c", "d")
    TextProducer(s, pattern=str(log)).run()
    shutil.copy(tmp_path / "ckpt.old", ckpt)
    assert TextProducer(s, pattern=str(log)).run().sent == 2
    got = events(s.kafka_bootstrap, topic, 6)
    keys = [(e.source_id, e.path, e.position, e.seq, e.text) for e in got]
    assert keys[2:4] == keys[4:6]
    assert len(set(keys)) == 4


def test_a_file_rewritten_in_place_while_stopped_is_read_from_the_start(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    log = tmp_path / "app.log"
    append(log, "first life 1", "first life 2")
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    TextProducer(s, pattern=str(log)).run()
    ino = log.stat().st_ino
    with open(log, "r+b") as fh:  # same inode, other content, larger
        fh.write(b"SECOND life 1\nSECOND life 2\nSECOND life 3\n")
    assert log.stat().st_ino == ino
    assert TextProducer(s, pattern=str(log)).run().sent == 3
    assert [e.text for e in events(s.kafka_bootstrap, topic, 5)][2:] == [
        "SECOND life 1",
        "SECOND life 2",
        "SECOND life 3",
    ]


def test_stdin_lines_become_events(
    stack: dict[str, str], make_topic: Callable[..., str], repo_root: Path
) -> None:
    topic = make_topic("text")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamsense.services.cli",
            "produce",
            "text",
            "--stdin",
            "--topic",
            topic,
            "--source-id",
            "chat",
        ],
        input=b"hello there\n\xffoops\nbye",
        cwd=repo_root,
        capture_output=True,
        timeout=60,
        env={**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"]},
        check=False,
    )
    assert res.returncode == 0, res.stderr.decode()
    got = events(stack["bootstrap"], topic, 3)
    assert [(e.text, e.source_id, e.seq, e.position, e.path) for e in got] == [
        ("hello there", "chat", 0, 0, None),
        ("\ufffdoops", "chat", 1, 12, None),
        ("bye", "chat", 2, 18, None),
    ]
    assert got[1].flags == ["invalid-utf8-replaced"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--path", "/no/such/dir/*.log"], "no file matches /no/such/dir/*.log"),
        (["--stdin", "--path", "x.log"], "give exactly one of --path GLOB and --stdin"),
        ([], "give exactly one of --path GLOB and --stdin"),
        (
            ["--path", "x.log", "--max-line-bytes", "1000000"],
            "--max-line-bytes=1000000: Input should be less than or equal to 65536",
        ),
    ],
)
def test_cli_errors_exit_2_with_a_clear_message(
    stack: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    env = {"STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"], "STREAMSENSE_HOME": str(tmp_path)}
    res = CliRunner().invoke(app, ["produce", "text", *args], env=env)
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_reconciling_reads_past_a_record_whose_header_keys_are_not_utf8(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    """Another client's record with such a key in the topic: confluent-kafka raised
    ``SystemError`` reading its headers, and the producer could not start (before)."""
    topic = make_topic("text")
    log = tmp_path / "app.log"
    ckpt = tmp_path / "ckpt.json"
    append(log, "a", "b")
    s = text_settings(stack, topic, ckpt)
    TextProducer(s, pattern=str(log)).run()
    shutil.copy(ckpt, tmp_path / "ckpt.old")
    append(log, "c", "d")
    TextProducer(s, pattern=str(log)).run()
    produce_raw(stack["bootstrap"], topic, [(b"app.log", b"{}", [(b"\xff-ss-src", b"x")])])
    shutil.copy(tmp_path / "ckpt.old", ckpt)  # as if the last 2 acks never reached the disk
    assert TextProducer(s, pattern=str(log)).run().sent == 0, "reconciled past the odd record"
    assert topic_size(s.kafka_bootstrap, topic) == 5
