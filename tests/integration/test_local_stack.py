"""`streamsense local up | status | down` as a user runs them, in a scratch home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streamsense.services.local import procs
from streamsense.services.settings import default_home

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STREAMSENSE_HOME": str(home)}
    env.pop("STREAMSENSE_KAFKA_BOOTSTRAP", None)
    return subprocess.run(
        [sys.executable, "-m", "streamsense.services.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_up_status_down_stops_exactly_what_it_started(tmp_path: Path) -> None:
    home = tmp_path / "home"
    jars = default_home() / "kafka-4.3.1"  # reuse the jar cache
    home.mkdir()
    if jars.exists():
        (home / jars.name).symlink_to(jars)
    kport, rport = procs.free_port(), procs.free_port()
    assert _cli(home, "local", "status").returncode == 1  # nothing started yet
    up = _cli(home, "local", "up", "--kafka-port", str(kport), "--redis-port", str(rport))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"127.0.0.1:{kport}" in up.stdout
        status = _cli(home, "local", "status")
        assert status.returncode == 0, status.stdout
        assert f"127.0.0.1:{kport}" in status.stdout and "answers" in status.stdout
        assert f"redis://127.0.0.1:{rport}/0" in status.stdout
        state = orjson.loads((home / "local" / "state.json").read_bytes())
        assert state["kafka_start_s"] < 60
        # `up` again is a no-op on a running stack
        again = _cli(home, "local", "up")
        assert again.returncode == 0 and f"pid {state['kafka_pid']}" in again.stdout
    finally:
        down = _cli(home, "local", "down")
    assert down.returncode == 0
    assert f"pid {state['kafka_pid']}" in down.stdout and f"pid {state['redis_pid']}" in down.stdout
    assert not procs.port_open(kport) and not procs.port_open(rport)
    assert not Path(f"/proc/{state['kafka_pid']}").exists() or not procs.is_ours(
        state["kafka_pid"], str(home)
    )
    assert _cli(home, "local", "status").returncode == 1
