"""Two text producers on one checkpoint (the same command started twice: a unit restarted while
the old process still drains, a cron job next to a service) would each send every line: the
second one is refused at start, naming the first, and a producer killed with -9 leaves no stale
lock behind. Before: both ran, and 200 lines appended became 400 records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.producers.conftest import topic_size
from tests.producers.test_text import append

pytestmark = pytest.mark.integration


def _cmd(log: Path, ckpt: Path, topic: str, *, follow: bool = True) -> list[str]:
    return [sys.executable, "-m", "streamsense.services.cli", "produce", "text", "--path",
            str(log), *(["--follow"] if follow else []), "--checkpoint", str(ckpt), "--topic",
            topic]  # fmt: skip


def test_a_second_producer_on_the_same_checkpoint_is_refused_and_nothing_repeats(
    stack: dict[str, str], make_topic: Callable[..., str], repo_root: Path, tmp_path: Path
) -> None:
    bootstrap = stack["bootstrap"]
    topic = make_topic("text")
    log, ckpt = tmp_path / "app.log", tmp_path / "ckpt.json"
    log.touch()
    env = {**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": bootstrap,
           "STREAMSENSE_TEXT_POLL_INTERVAL_S": "0.1"}  # fmt: skip
    out = (tmp_path / "first.out").open("w")
    first = subprocess.Popen(_cmd(log, ckpt, topic), cwd=repo_root, env=env, stdout=out,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_for(ckpt.exists, 30, "the first producer to start (its checkpoint is written first)")
        second = subprocess.run(
            _cmd(log, ckpt, topic),
            cwd=repo_root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "Traceback" not in second.stderr, second.stderr[-3000:]
        assert second.returncode == 2, second.stderr[-3000:]
        errors = [" ".join(x.split()) for x in second.stderr.splitlines() if x.startswith("error:")]
        assert errors == [
            f"error: checkpoint {ckpt} is in use by another producer (pid {first.pid}): two "
            "producers on one checkpoint send every line twice; stop that one, or give this one "
            "its own --checkpoint"
        ]
        append(log, *(f"line {i}" for i in range(200)))
        wait_for(lambda: topic_size(bootstrap, topic) >= 200, 30, "200 lines")
        # kill -9 leaves the lock file, but not the lock: the next producer starts and resumes
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        append(log, "after the kill")
        third = subprocess.run(_cmd(log, ckpt, topic, follow=False), cwd=repo_root, env=env,
                               capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    finally:
        first.kill()
        out.close()
    assert third.returncode == 0, third.stderr[-3000:]
    assert topic_size(bootstrap, topic) == 201, "every line once: none twice, none lost"
