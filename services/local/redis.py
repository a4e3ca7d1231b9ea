"""A Redis server from Debian's ``redis-server`` on loopback, with an append-only file fsynced
every second (what every shipped configuration runs; docs/reliability.md says what a crash can
still lose, and ``streamsense sink rebuild`` restores the rest from Kafka)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from streamsense.services.exceptions import ServiceError
from streamsense.services.local import procs


@dataclass(frozen=True)
class RedisNode:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    password: str | None = None
    #: the append-only file; off only to show what a Redis without it loses (tests)
    persistence: bool = True

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def start(self) -> int:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            msg = "redis-server is not installed: apt-get install redis-server (make setup does it)"
            raise ServiceError(msg)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            binary,
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistence else "no",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        if self.password:
            cmd += ["--requirepass", self.password]
        return procs.spawn(cmd, self.log_path, cwd=self.data_dir)
