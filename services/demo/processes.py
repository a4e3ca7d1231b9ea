"""Start the platform's services as child processes and stop them gracefully (SIGTERM)."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamsense.services.local import procs

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Runs ``streamsense ...`` children with logs in ``log_dir``; stops them in reverse order."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        child = Child(
            name, [sys.executable, "-m", "streamsense.services.cli", *args], env=env or {}
        )
        child.log_path = self.log_dir / f"{name}.log"
        child.proc = procs.start_cli(args, child.log_path, {**self.env, **child.env}, append=False)
        self.children.append(child)
        return child

    def failed(self) -> list[Child]:
        return [c for c in self.children if c.proc is not None and c.proc.poll() not in (None, 0)]

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM everything (producers first, then workers, sink, gateway), then wait."""
        for child in self.children:
            if child.alive and child.proc is not None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for child in self.children:
            assert child.proc is not None
            try:
                codes[child.name] = child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.proc.kill()
                codes[child.name] = child.proc.wait()
        return codes
