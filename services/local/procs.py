"""Start, find and stop the processes of the local stack, exactly the ones we started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from streamsense.services.exceptions import ServiceError

#: Processes started by this Python process, kept so they are reaped (and not reported by
#: ``Popen.__del__`` as still running) when we stop them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def spawn(cmd: Sequence[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None) -> int:
    """Start a process in its own session (it outlives the CLI), output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv built by us
            list(cmd),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def start_cli(
    args: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    *,
    new_session: bool = False,
    cwd: Path | None = None,
    append: bool = True,
) -> subprocess.Popen[bytes]:
    """``python -m streamsense.services.cli ARGS`` as a child: this process' environment plus
    ``env``, output to ``log_path`` (appended, or the file restarted). The caller owns (and stops)
    the process."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab" if append else "wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "streamsense.services.cli", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=new_session,
        )


def is_ours(pid: int, marker: str) -> bool:
    """True when ``pid`` is alive and its command line contains ``marker`` (our data dir)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def stop(pid: int, marker: str, timeout: float = 20.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; only if the process is still ours."""
    if not is_ours(pid, marker):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_ours(pid, marker) or _zombie(pid):
            _reap(pid)
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def kill(pid: int, marker: str) -> bool:
    """SIGKILL (a crash, no shutdown at all), then reap; only if the process is still ours."""
    if not is_ours(pid, marker):
        return False
    os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(5)
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_until(check: Callable[[], bool], timeout: float, what: str, log_path: Path) -> float:
    """Poll ``check`` until true; returns the seconds it took or raises with the log's tail."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    msg = f"{what} did not come up within {timeout:.0f} s; log {log_path}:\n{tail}"
    raise ServiceError(msg)
