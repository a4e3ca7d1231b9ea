"""An operator's typo in the environment or on the command line, through the real CLI process:
every command that reads settings answers with one ``error:`` line naming the variable or flag
and the value typed, exit 2, and never a traceback (before, ``topics``, ``models``, ``local``,
``bench``, ``feedback`` and ``demo`` printed a pydantic traceback and exited 1, and
``--log-level banana`` crashed every command)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: commands that read settings before doing anything; the arguments are otherwise valid
COMMANDS = [
    ["topics", "create"],
    ["topics", "spec"],
    ["models", "list"],
    ["models", "promote", "sentiment-tweets", "1"],
    ["models", "rollback", "sentiment-tweets"],
    ["local", "status"],
    ["local", "down"],
    ["bench", "transport"],
    ["feedback", "--text", "great", "--label", "positive"],
    ["demo", "smoke"],
    ["sink", "rebuild"],
    ["sink", "redis"],
    ["gateway"],
    ["worker", "sentiment"],
    ["learner", "sentiment"],
    ["analytics"],
]


def _cli(args: list[str], env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamsense.services.cli", *args],
        env={
            **os.environ,
            # nothing listens here: a command that got past its settings fails, it never waits
            "STREAMSENSE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "STREAMSENSE_REDIS_URL": "redis://127.0.0.1:1/0",
            "STREAMSENSE_HOME": str(home),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, res.stderr
    return errors[0]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_invalid_setting_is_one_line_naming_the_variable(args: list[str], tmp_path: Path) -> None:
    res = _cli(args, {"STREAMSENSE_DELIVERY": "maybe"}, tmp_path)
    assert res.returncode == 2, res.stderr
    line = _one_error_line(res)
    assert "STREAMSENSE_DELIVERY='maybe'" in line
    assert "exactly-once" in line  # what to type instead


@pytest.mark.parametrize("args", [["topics", "spec"], ["models", "list"]], ids=" ".join)
def test_invalid_number_is_one_line_naming_the_variable(args: list[str], tmp_path: Path) -> None:
    res = _cli(args, {"STREAMSENSE_METRICS_PORT": "-5"}, tmp_path)
    assert res.returncode == 2, res.stderr
    assert "STREAMSENSE_METRICS_PORT='-5'" in _one_error_line(res)
    res = _cli(args, {"STREAMSENSE_METRICS_PORT": "eighty"}, tmp_path)
    assert res.returncode == 2, res.stderr
    assert "STREAMSENSE_METRICS_PORT='eighty'" in _one_error_line(res)


def test_unknown_log_level_is_one_line(tmp_path: Path) -> None:
    res = _cli(["--log-level", "banana", "topics", "spec"], {}, tmp_path)
    assert res.returncode == 2, res.stderr
    line = _one_error_line(res)
    assert "'banana'" in line
    assert "DEBUG" in line
    res = _cli(["topics", "spec"], {"STREAMSENSE_LOG_LEVEL": "loud"}, tmp_path)
    assert res.returncode == 2, res.stderr
    assert "STREAMSENSE_LOG_LEVEL='loud'" in _one_error_line(res)


def test_log_level_is_case_insensitive(tmp_path: Path) -> None:
    res = _cli(["--log-level", "warning", "topics", "spec"], {}, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "frames" in res.stdout
