"""Real stream servers for the camera tests, each run as its own process so a test can kill,
restart or stop (SIGSTOP) it like a camera that reboots or hangs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamsense.services.local import procs

HERE = Path(__file__).resolve().parent
#: gst-rtsp-server is reached through PyGObject, which Debian installs for its own Python.
SYSTEM_PYTHON = "/usr/bin/python3"


def gst_rtsp_missing() -> str | None:
    """Why the RTSP server cannot run here (None when it can)."""
    if not shutil.which(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} is missing"
    probe = subprocess.run(  # noqa: S603 - a fixed command
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0');"
         "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
         "assert Gst.ElementFactory.find('jpegenc') and Gst.ElementFactory.find('rtpjpegpay')"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if probe.returncode:
        tail = probe.stderr.strip().splitlines()[-1:] or ["?"]
        return f"GStreamer's RTSP server is not usable ({tail[0]}): run `make test-deps`"
    return None


class StreamServer:
    """An RTSP (gst-rtsp-server) or HTTP MJPEG server on a free loopback port."""

    def __init__(self, kind: str, log_dir: Path, fps: int = 10) -> None:
        self.kind = kind
        self.port = procs.free_port()
        self.fps = fps
        self.log = log_dir / f"{kind}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        if kind == "rtsp":
            self.url = f"rtsp://127.0.0.1:{self.port}/cam"
            self.cmd = [SYSTEM_PYTHON, str(HERE / "rtsp_server.py")]
        else:
            self.url = f"http://127.0.0.1:{self.port}/cam.mjpg"
            self.cmd = [sys.executable, str(HERE / "mjpeg_server.py")]

    def start(self, timeout: float = 20.0) -> float:
        """Start it and wait until it listens; returns that time (``time.time()``)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own script
                [*self.cmd, "--port", str(self.port), "--fps", str(self.fps)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not procs.port_open(self.port, timeout=0.2):
            if self.proc.poll() is not None:
                pytest.fail(f"{self.kind} server exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.kind} server not listening after {timeout:.0f} s")
            time.sleep(0.02)
        return time.time()

    def kill(self) -> None:
        """SIGKILL, as a camera that loses power; the port is free again at once."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process dies all the same
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing is sent (a hung camera)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
