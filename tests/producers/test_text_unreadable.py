"""Matched files the text producer cannot open or read: never an exit 0 with a file left unread,
never a traceback, never a warning at every scan.

Root reads a mode-000 file anyway, so as root the CLI runs under ``setpriv`` without the two
capabilities that bypass file permissions (the kernel then checks them as for anyone). A read
error is real too: ``/proc/self/mem`` opens, and reading it at offset 0 fails with EIO.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from streamsense.services.producers.text import TextProducer
from tests.conftest import wait_for
from tests.producers.conftest import topic_size
from tests.producers.test_text import Following, append, events, text_settings

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "streamsense.services.cli"]


def _without_root_file_access() -> list[str]:
    """A prefix that makes permissions hold for this process's children (nothing as non-root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be made to hold")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


def _env(stack: dict[str, str], home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"],
        "STREAMSENSE_HOME": str(home),
        "STREAMSENSE_TEXT_POLL_INTERVAL_S": "0.1",
    }


def _errors(stderr: str) -> list[str]:
    return [" ".join(line.split()) for line in stderr.splitlines() if line.startswith("error:")]


def _cli(
    stack: dict[str, str], repo_root: Path, home: Path, *args: str, prefix: Sequence[str] = ()
) -> tuple[int, str]:
    """``streamsense ARGS`` run to its end (under ``prefix``): its exit code and stderr."""
    res = subprocess.run(
        [*prefix, *CLI, *args], cwd=repo_root, env=_env(stack, home), capture_output=True,
        timeout=120, check=False,
    )  # fmt: skip
    return res.returncode, res.stderr.decode()


def test_a_file_that_cannot_be_opened_fails_the_run_once_the_others_are_sent(
    stack: dict[str, str], make_topic: Callable[..., str], repo_root: Path, tmp_path: Path
) -> None:
    """Before: the file was a warning among the INFO lines and the run exited 0."""
    topic = make_topic("text")
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", "a-0", "a-1")
    append(logs / "b.log", "b-0")
    (logs / "b.log").chmod(0)

    def produce(path: Path) -> tuple[int, str]:
        return _cli(stack, repo_root, tmp_path, "produce", "text", "--path", str(path), "--topic",
                    topic, prefix=_without_root_file_access())  # fmt: skip

    code, stderr = produce(logs / "*.log")
    assert code == 2, stderr
    (line,) = _errors(stderr)
    assert f"1 file(s) matching {logs / '*.log'} could not be read" in line
    assert f"{logs / 'b.log'}: cannot open it: Permission denied" in line
    assert "the other files' lines were sent" in line
    assert "Traceback" not in stderr
    assert [e.text for e in events(stack["bootstrap"], topic, 2)] == ["a-0", "a-1"]
    assert topic_size(stack["bootstrap"], topic) == 2

    # the file alone: it says so (not "no file matches"), and nothing was sent
    code, stderr = produce(logs / "b.log")
    assert code == 2, stderr
    (line,) = _errors(stderr)
    assert "b.log: cannot open it: Permission denied; no line was sent" in line

    # readable again: its line goes, the others are not sent again
    (logs / "b.log").chmod(0o644)
    code, stderr = produce(logs / "*.log")
    assert code == 0, stderr
    assert sorted(e.text for e in events(stack["bootstrap"], topic, 3)) == ["a-0", "a-1", "b-0"]
    assert topic_size(stack["bootstrap"], topic) == 3


def test_a_read_error_closes_only_that_file_and_fails_the_run(
    stack: dict[str, str], make_topic: Callable[..., str], repo_root: Path, tmp_path: Path
) -> None:
    """Before: ``OSError: [Errno 5] Input/output error``, exit 1, no file named, no line sent."""
    topic = make_topic("text")
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", "a-0", "a-1")
    (logs / "m.log").symlink_to("/proc/self/mem")
    code, stderr = _cli(stack, repo_root, tmp_path, "produce", "text", "--path",
                        str(logs / "*.log"), "--topic", topic)  # fmt: skip
    assert code == 2, stderr
    (line,) = _errors(stderr)
    assert f"{logs / 'm.log'}: read failed at byte 0: Input/output error" in line
    assert "Traceback" not in stderr
    assert [e.text for e in events(stack["bootstrap"], topic, 2)] == ["a-0", "a-1"]


def test_following_an_unreadable_file_says_so_once_and_takes_it_when_readable(
    stack: dict[str, str], make_topic: Callable[..., str], repo_root: Path, tmp_path: Path
) -> None:
    """Before: the same warning at every scan (ten a second here), and nothing in the view."""
    topic = make_topic("text")
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", "a-0")
    append(logs / "b.log", "b-0")
    (logs / "b.log").chmod(0)
    out = tmp_path / "producer.log"
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [*_without_root_file_access(), *CLI, "produce", "text", "--path",
             str(logs / "*.log"), "--follow", "--topic", topic],
            cwd=repo_root, env=_env(stack, tmp_path), stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        events(stack["bootstrap"], topic, 1)
        append(logs / "a.log", "a-1")  # scans go on (0.1 s) while b.log stays unreadable
        wait_for(lambda: len(events(stack["bootstrap"], topic, 2)) == 2, 30, "a-1")
        log = out.read_text()
        assert log.count("b.log: cannot open it: Permission denied") == 1, log
        (logs / "b.log").chmod(0o644)
        wait_for(lambda: "b.log can be read now" in out.read_text(), 30, "the file taken")
        got = sorted(e.text for e in events(stack["bootstrap"], topic, 3))
        assert got == ["a-0", "a-1", "b-0"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, out.read_text()


def test_health_names_a_followed_file_that_failed_and_the_others_keep_flowing(
    stack: dict[str, str],
    make_topic: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = make_topic("text")
    append(tmp_path / "a.log", "a-0")
    (tmp_path / "m.log").symlink_to("/proc/self/mem")
    caplog.set_level(logging.INFO, logger="streamsense")
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    run = Following(TextProducer(s, pattern=str(tmp_path / "*.log"), follow=True))
    try:
        run.acked(1)
        append(tmp_path / "a.log", "a-1")
        run.acked(2)
        ok, detail = run.producer.health()
        assert detail["unreadable"] == 1
        (why,) = detail["unreadable_files"].values()
        assert why == "read failed at byte 0: Input/output error"
        assert ok, "Kafka acknowledges: the service is up, the file is named in its health"
    finally:
        run.stop()  # following ends on a stop request: no error for the failed file
    failures = [r for r in caplog.records if "read failed" in r.getMessage()]
    assert len(failures) == 1, "closed and not reopened at every scan"
    assert [e.text for e in events(stack["bootstrap"], topic, 2)] == ["a-0", "a-1"]


def test_a_file_name_that_is_not_utf8_is_followed_like_any_other(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    """Before: ``ValidationError ... unable to parse raw data as a unicode string``: the whole
    producer stopped, with a traceback, for one file's name in the glob."""
    topic = make_topic("text")
    append(tmp_path / "a.log", "a-0")
    hostile = os.path.join(os.fsencode(tmp_path), b"bad\xff.log")
    with open(hostile, "wb") as fh:
        fh.write(b"from the badly named file\n")
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    run = Following(TextProducer(s, pattern=str(tmp_path / "*.log"), follow=True))
    try:
        run.acked(2)
        append(tmp_path / "a.log", "a-1")
        run.acked(3)
        ok, _detail = run.producer.health()
        assert ok
    finally:
        run.stop()
    got = {e.text: e for e in events(stack["bootstrap"], topic, 3)}
    assert set(got) == {"a-0", "a-1", "from the badly named file"}
    bad = got["from the badly named file"]
    assert bad.path == f"{tmp_path}/bad\ufffd.log" and bad.source_id == "bad\ufffd.log"
    checkpoint = (tmp_path / "ckpt.json").read_text(encoding="utf-8")
    assert "bad\ufffd.log" in checkpoint


def test_a_checkpoint_that_cannot_be_written_is_named_with_what_to_do(
    stack: dict[str, str], make_topic: Callable[..., str], repo_root: Path, tmp_path: Path
) -> None:
    """Before: ``FileNotFoundError: [Errno 2] ... '/proc/.ckpt.json.1234.tmp'``."""
    topic = make_topic("text")
    append(tmp_path / "a.log", "a-0")
    code, stderr = _cli(stack, repo_root, tmp_path, "produce", "text", "--path",
                        str(tmp_path / "a.log"), "--topic", topic, "--checkpoint",
                        "/proc/ckpt.json")  # fmt: skip
    assert code == 2, stderr  # a local file to fix, not a Kafka problem (exit 1)
    (line,) = _errors(stderr)
    assert line == (
        "error: cannot write the checkpoint /proc/ckpt.json: No such file or directory; give a "
        "writable --checkpoint (or STREAMSENSE_HOME)"
    )
    assert topic_size(stack["bootstrap"], topic) == 0, "no line before its producer id is on disk"


def test_a_path_that_is_a_fifo_or_a_directory_is_named_with_what_to_do(
    stack: dict[str, str], make_topic: Callable[..., str], repo_root: Path, tmp_path: Path
) -> None:
    """Before: "no file matches" for a path that is right there, with no hint."""
    topic = make_topic("text")
    fifo, folder = tmp_path / "app.pipe", tmp_path / "logs"
    os.mkfifo(fifo)
    folder.mkdir()
    for path, expected in (
        (fifo, f"error: no file matches {fifo}: {fifo} is a FIFO, a device or a socket, not a "
               "regular file; pipe it in instead: cat FIFO | streamsense produce text --stdin"),
        (folder, f"error: no file matches {folder}: {folder} is a directory; match the files in "
                 "it (dir/*.log)"),
    ):  # fmt: skip
        code, stderr = _cli(stack, repo_root, tmp_path, "produce", "text", "--path", str(path),
                            "--topic", topic)  # fmt: skip
        assert code == 2, stderr
        assert _errors(stderr) == [expected], stderr
    assert topic_size(stack["bootstrap"], topic) == 0


def test_a_proc_file_is_sent_once_then_named_not_sent_again_and_again(tmp_path: Path) -> None:
    """/proc files report a size of 0 whatever they hold, so a followed one looked truncated at
    every read and was sent again without end; a real file truncated to 0 still starts over."""
    from streamsense.services.producers.tail import Tailer

    lines = len(Path("/proc/cpuinfo").read_bytes().splitlines())
    tailer = Tailer("/proc/cpuinfo", max_line_bytes=65536, follow=True, grace_s=1.0,
                    source_id=None, resume=lambda *_: None, on_close=None)  # fmt: skip
    tailer.scan()
    got = sum(len(tailer.read()) for _ in range(5))
    assert (got, tailer.truncations, list(tailer.files)) == (lines, 0, [])
    assert "a /proc or /sys file" in tailer.unreadable["/proc/cpuinfo"]

    log_file = tmp_path / "app.log"
    append(log_file, "a-0", "a-1")
    real = Tailer(str(log_file), max_line_bytes=65536, follow=True, grace_s=1.0,
                  source_id=None, resume=lambda *_: None, on_close=None)  # fmt: skip
    real.scan()
    assert len(real.read()) == 2
    log_file.write_bytes(b"")  # copytruncate
    assert real.read() == [] and real.truncations == 1 and not real.unreadable
    append(log_file, "b-0")
    assert [line.data for _f, line in real.read()] == [b"b-0"]
    real.close()
