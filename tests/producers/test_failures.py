"""The producers' failure paths, driven through the real CLI where a user meets them: Kafka not
there, a followed glob that matches nothing, a giant line among other files' lines, a file
rotated while the producer was stopped."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamsense.services.local import procs
from streamsense.services.producers.settings import MAX_TEXT_BYTES
from streamsense.services.producers.tail import Tailer
from streamsense.services.producers.text import TextProducer
from tests.conftest import wait_for
from tests.producers.test_text import Following, append, events, text_settings

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "streamsense.services.cli"]


def _cli(
    args: list[str], env: dict[str, str], repo: Path, stdin: bytes = b""
) -> tuple[int, str, float]:
    start = time.monotonic()
    res = subprocess.run(
        [*CLI, *args], input=stdin, cwd=repo, capture_output=True, timeout=120, check=False,
        env={**os.environ, **env},
    )  # fmt: skip
    return res.returncode, res.stderr.decode(), time.monotonic() - start


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    "args",
    [
        ["produce", "text", "--stdin", "--kafka-timeout", "3"],
        [
            "produce",
            "camera",
            "--source",
            "SAMPLE",
            "--camera-id",
            "c1",
            "--loop",
            "--kafka-timeout",
            "3",
        ],
    ],  # fmt: skip
    ids=["stdin", "camera"],
)
def test_an_unreachable_kafka_is_one_line_and_exit_1_within_the_timeout(
    args: list[str], repo_root: Path, tmp_path: Path, image_folder: Path
) -> None:
    env = {
        "STREAMSENSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{procs.free_port()}",  # nothing listens
        "STREAMSENSE_HOME": str(tmp_path),
    }
    args = [str(image_folder / "frame-00.jpg") if a == "SAMPLE" else a for a in args]
    code, stderr, took = _cli(args, env, repo_root, stdin=b"a\nb\n")
    assert code == 1, stderr
    (line,) = _error_lines(stderr)
    assert f"Kafka at {env['STREAMSENSE_KAFKA_BOOTSTRAP']} did not answer within 3 s" in line
    assert "STREAMSENSE_KAFKA_BOOTSTRAP" in line and "--kafka-timeout" in line
    if "--stdin" in args:
        assert line.endswith("no line was read")
    assert "they are sent again" not in stderr
    assert "Traceback" not in stderr
    assert stderr.count("Connection refused") <= 2, "librdkafka's noise: once, not per attempt"
    assert took < 3 + 15, f"took {took:.1f} s"  # the timeout plus Python's and TF-free start-up


def test_a_glob_that_matches_nothing_says_so_and_when_that_changes(
    stack: dict[str, str], make_topic: Callable[..., str], repo_root: Path, tmp_path: Path
) -> None:
    topic = make_topic("text")
    logs = tmp_path / "nope"
    env = {
        **os.environ,
        "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"],
        "STREAMSENSE_HOME": str(tmp_path),
        "STREAMSENSE_TEXT_POLL_INTERVAL_S": "0.2",
    }
    out = tmp_path / "producer.log"
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [*CLI, "produce", "text", "--path", str(logs / "*.log"), "--follow", "--topic", topic],
            cwd=repo_root, env=env, stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: "no file matches" in out.read_text(), 60, "the no-match warning")
        assert f"no file matches {logs / '*.log'} yet" in " ".join(out.read_text().split())
        logs.mkdir()
        append(logs / "app.log", "finally a line")
        wait_for(lambda: "now matches 1 file" in out.read_text(), 30, "the match notice")
        (got,) = events(stack["bootstrap"], topic, 1)
        assert got.text == "finally a line"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, out.read_text()


def test_a_giant_line_delays_other_files_by_one_read_round_not_its_size(
    tmp_path: Path,
) -> None:
    """The Tailer, without Kafka: the first read round already returns the other file's line
    and the giant line (truncated); the rest of the giant line is skipped in 1 MB rounds."""
    giant, small = tmp_path / "giant.log", tmp_path / "small.log"
    giant.write_bytes(b"x" * 100_000_000)  # 100 MB, no newline (yet)
    small.write_bytes(b"an ordinary line\n")
    tailer = Tailer(str(tmp_path / "*.log"), max_line_bytes=MAX_TEXT_BYTES, follow=True)
    tailer.scan()
    first = tailer.read()
    by_file = {Path(f.path).name: raw for f, raw in first}
    assert by_file["small.log"].data == b"an ordinary line"
    assert by_file["giant.log"].truncated and len(by_file["giant.log"].data) == MAX_TEXT_BYTES
    assert not tailer.idle, "the giant file has more to read: the caller reads again at once"
    rounds = 1
    with giant.open("ab") as fh:
        fh.write(b"\nafter the giant\n")
    lines = []
    while not tailer.idle:
        lines += [raw for _f, raw in tailer.read()]
        rounds += 1
    tailer.close()
    assert 90 <= rounds <= 110  # 1 MB per file per round
    assert [(r.tail, r.data) for r in lines] == [(True, b""), (False, b"after the giant")]


def test_a_giant_line_is_served_truncated_and_other_files_keep_flowing(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    """Through Kafka: a 100 MB line without a newline is one truncated, flagged record, and a
    line appended to another file meanwhile is acknowledged within a second (it waited ~20 s
    behind such a line before: 1 MB per 0.2 s poll)."""
    topic = make_topic("text")
    giant, small = tmp_path / "giant.log", tmp_path / "small.log"
    small.write_bytes(b"")
    s = text_settings(stack, topic, tmp_path / "ckpt.json", text_poll_interval_s=0.2)
    run = Following(TextProducer(s, pattern=str(tmp_path / "*.log"), follow=True))
    try:
        wait_for(lambda: run.producer.tailer is not None and run.producer.tailer.files, 20, "files")
        giant.write_bytes(b"y" * 100_000_000)
        append(small, "meanwhile")
        t0 = time.monotonic()
        run.acked(2)
        delay = time.monotonic() - t0
        append(giant, "", "next line of the giant file")
        run.acked(3)
    finally:
        run.stop()
    got = events(s.kafka_bootstrap, topic, 3)
    texts = {e.text[:20]: e for e in got}
    assert texts["meanwhile"].flags == []
    assert texts["y" * 20].flags == ["truncated"] and len(texts["y" * 20].text) == MAX_TEXT_BYTES
    assert texts["next line of the gia"].text == "next line of the giant file"
    print(f"\nother file's line acknowledged {delay * 1000:.0f} ms after a 100 MB line")
    assert delay < 5, f"{delay:.1f} s"


def test_a_file_rotated_while_stopped_is_finished_and_not_misreported(
    stack: dict[str, str],
    make_topic: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = make_topic("text")
    log = tmp_path / "app.log"
    append(log, *(f"old-{i}" for i in range(3)))
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    run = Following(TextProducer(s, pattern=str(log), follow=True))
    run.acked(3)
    run.stop()
    # while stopped: the application writes on, logrotate renames and creates
    append(log, "old-3 written while we were down")
    log.rename(tmp_path / "app.log.1")
    append(log, "new-0")
    caplog.set_level(logging.INFO, logger="streamsense")
    run = Following(TextProducer(s, pattern=str(log), follow=True))
    run.acked(2)
    run.stop()
    got = [e.text for e in events(s.kafka_bootstrap, topic, 5)]
    assert got[:3] == ["old-0", "old-1", "old-2"]
    assert sorted(got[3:]) == ["new-0", "old-3 written while we were down"]
    messages = [r.getMessage() for r in caplog.records]
    assert not any("no longer matched" in m for m in messages), messages
    assert any("(formerly" in m and "rotated while stopped" in m for m in messages), messages
