"""Clients that misbehave, for ``bench fanout``: WebSocket clients that never read, and one that
sends oversized messages, watched from the outside.

An idle client is a raw socket that completes the upgrade and then never reads. The kernel
tells when it stalled (its receive queue stopped growing: the gateway stopped sending) and when
the gateway cut it (the TCP state leaves ESTABLISHED); both are polled every ``POLL_S`` by a
child process.
"""

from __future__ import annotations

import base64
import fcntl
import multiprocessing
import os
import socket
import struct
import termios
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import psutil

from streamsense.services.exceptions import ServiceError

POLL_S = 0.05
TCP_ESTABLISHED = 1
#: A receive queue that grew by less (a ping, a close frame) did not get results.
GREW = 128


def upgrade(host: str, port: int, path: str = "/ws/live") -> socket.socket:
    """A WebSocket handshake on a raw socket; nothing after the response head is read."""
    sock = socket.create_connection((host, port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        byte = sock.recv(1)
        if not byte:
            msg = "the gateway closed the connection during the upgrade"
            raise ConnectionError(msg)
        head += byte
    if not head.startswith(b"HTTP/1.1 101"):
        msg = f"upgrade refused: {head.splitlines()[0]!r}"
        raise ConnectionError(msg)
    return sock


@dataclass
class _Idle:
    sock: socket.socket
    queued: int = 0
    grew_at: float = 0.0
    closed_at: float | None = None


def _watch(host: str, port: int, n: int, conn: Connection) -> None:
    """The child process: open ``n`` idle clients, watch them until told to stop, report."""
    try:
        now = time.monotonic()
        clients = [_Idle(upgrade(host, port), grew_at=now) for _ in range(n)]
    except OSError as exc:
        conn.send(("error", str(exc)))
        return
    conn.send(("ready", None))
    buf = bytearray(4)
    while not conn.poll(POLL_S):
        now = time.monotonic()
        for c in clients:
            if c.closed_at is not None:
                continue
            if c.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] != TCP_ESTABLISHED:
                c.closed_at = now
                continue
            fcntl.ioctl(c.sock.fileno(), termios.FIONREAD, buf)
            queued = struct.unpack("i", buf)[0]
            if queued >= c.queued + GREW:  # results, not the pings and close frame after them
                c.grew_at = now
            c.queued = max(c.queued, queued)
    conn.recv()
    conn.send(("done", [(c.queued, c.grew_at, c.closed_at) for c in clients]))
    for c in clients:
        c.sock.close()


class IdleClients:
    """``n`` clients that never read, opened and watched in a child process, so the polling
    never takes the benchmark's GIL from the clients whose latency is measured."""

    def __init__(self, host: str, port: int, n: int) -> None:
        self.host, self.port, self.n = host, port, n
        self.records: list[tuple[int, float, float | None]] = []

    def __enter__(self) -> IdleClients:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_watch, args=(self.host, self.port, self.n, child), daemon=True
        )
        self._proc.start()
        child.close()
        if not self._conn.poll(60):
            msg = f"{self.n} idle clients did not connect within 60 s"
            raise ServiceError(msg)
        try:
            kind, detail = self._conn.recv()
        except EOFError as exc:
            msg = f"the idle clients' process exited (code {self._proc.exitcode})"
            raise ServiceError(msg) from exc
        if kind != "ready":
            msg = f"idle clients could not connect: {detail}"
            raise ServiceError(msg)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._proc.is_alive() and not self.records:
            self._conn.send("stop")
            if self._conn.poll(30):
                self.records = self._conn.recv()[1]
        self._proc.join(10)

    def report(self, flow_started: float) -> dict[str, Any]:
        closed = [(g, c) for _, g, c in self.records if c is not None]
        since_flow = np.array([c - flow_started for _, c in closed])
        since_stall = np.array([c - g for g, c in closed])
        held = np.array([q for q, _, _ in self.records], dtype=float)

        def stats(a: np.ndarray) -> dict[str, float]:
            if a.size == 0:
                return {}
            return {"p50": round(float(np.median(a)), 2), "max": round(float(a.max()), 2)}

        return {
            "clients": self.n,
            "closed": len(closed),
            "closed_s_after_flow_start": stats(since_flow),
            "closed_s_after_stall": stats(since_stall),
            "bytes_held_by_client_kernel": stats(held),
        }


def oversized(host: str, port: int, pid: int, messages: int, size: int) -> dict[str, Any]:
    """``messages`` client messages of ``size`` bytes, one after the other (a new connection
    each time the gateway closes one), while the gateway's RSS is sampled."""
    proc = psutil.Process(pid)
    baseline = proc.memory_info().rss
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            stop.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    payload = b"x" * (1 << 20)
    accepted: list[int] = []
    codes: list[int | None] = []
    try:
        for _ in range(messages):
            sock = upgrade(host, port)
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, size) + b"\0\0\0\0"
            sent = 0
            try:
                sock.sendall(header)
                while sent < size:
                    sock.sendall(payload[: min(len(payload), size - sent)])
                    sent += min(len(payload), size - sent)
            except OSError:  # the gateway closed the connection: what we want to see
                pass
            accepted.append(sent)
            codes.append(_close_code(sock))
            sock.close()
    finally:
        stop.set()
        sampler.join(2)
    mb = 1024 * 1024
    return {
        "messages": messages,
        "message_bytes": size,
        "rss_baseline_mb": round(baseline / mb, 1),
        "rss_peak_mb": round(peak[0] / mb, 1),
        "rss_after_mb": round(proc.memory_info().rss / mb, 1),
        "payload_bytes_sent_before_close_max": max(accepted),
        "close_codes": sorted({c for c in codes if c is not None}),
    }


def _close_code(sock: socket.socket) -> int | None:
    """The code of the close frame the gateway sent, if it could be read."""
    sock.settimeout(5)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    while len(data) >= 4:
        n = data[1] & 0x7F
        head = 2 + (2 if n == 126 else 8 if n == 127 else 0)
        n = int.from_bytes(data[2:head], "big") if head > 2 else n
        if data[0] & 0x0F == 0x8:
            return int.from_bytes(data[head : head + 2], "big")
        data = data[head + n :]
    return None
