"""A WebSocket client on a bare socket, for tests that must control what is read and sent:
a handshake that takes nothing after the response head, and the server's close frame."""

from __future__ import annotations

import base64
import os
import socket
import time


def handshake(host: str, port: int, rcvbuf: int | None = None) -> socket.socket:
    """Open ``/ws/live``; read the 101 response byte by byte, so nothing after it is taken.
    ``rcvbuf``: a small receive buffer (a client that reads little)."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws/live HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        "".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def close_frame(sock: socket.socket, timeout: float = 10.0) -> tuple[int, str] | None:
    """Read server frames until the close frame: its code and reason; None when the socket
    ends (or the time runs out) without one."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return None
        if not chunk:
            return None
        data += chunk
        while len(data) >= 2:
            n = data[1] & 0x7F
            head = 2 + (2 if n == 126 else 8 if n == 127 else 0)
            if n >= 126:
                n = int.from_bytes(data[2:head], "big")
            if len(data) < head + n:
                break
            if data[0] & 0x0F == 0x8:
                body = data[head : head + n]
                return int.from_bytes(body[:2], "big"), body[2:].decode()
            data = data[head + n :]
    return None
