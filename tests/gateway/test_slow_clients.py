"""Slow and hostile WebSocket clients against the real pipeline: 200 clients that never read
are closed (1013) within the limit while a reading client gets every result; a client that
stalls and then reads finds the 1013 close; messages above the size limit close the socket on
their header, before their payload is read. Bounded in count and time."""

from __future__ import annotations

import fcntl
import socket
import struct
import sys
import termios
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from streamsense.services.gateway.wsconn import FIRST_WINDOW
from tests.conftest import wait_for
from tests.gateway import rawws
from tests.gateway.conftest import Pipeline
from tests.sink import factory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IDLE = 200
SLOW_CLIENT_S = 1.0
#: Room for the reading client to take the whole burst without a drop.
CLIENT_QUEUE = 2048
GATEWAY_SETTINGS = {"gateway_slow_client_s": SLOW_CLIENT_S, "gateway_ws_max_message": 4096}
TCP_ESTABLISHED = 1


def _handshake(url: str, rcvbuf: int | None = None) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return rawws.handshake(parts.hostname, parts.port, rcvbuf)


def _tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def _queued(sock: socket.socket) -> int:
    """Bytes waiting in the socket's receive queue (what the gateway sent and nobody read)."""
    buf = bytearray(4)
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
    except OSError:  # reset already
        return 0
    return int.from_bytes(buf, sys.byteorder)


def _stats(p: Pipeline) -> dict[str, Any]:
    return httpx.get(f"{p.url}/api/stats", timeout=10).json()


def _results(n: int, start: int, size: int = 2000) -> list[tuple]:
    text = "y" * size  # a few hundred of these fill a client's socket buffers
    return [
        factory.result_record(factory.sentiment("burst", start + i, text=text)) for i in range(n)
    ]


def test_two_hundred_clients_that_never_read_are_closed_while_a_reader_keeps_up(
    pipeline: Pipeline,
) -> None:
    base = _stats(pipeline)
    idle = [_handshake(pipeline.url) for _ in range(IDLE)]
    ws_url = f"ws://{urlsplit(pipeline.url).netloc}/ws/live?task=sentiment&source=burst"
    got: list[int] = []
    try:
        with connect(ws_url, max_size=None, compression=None, ping_interval=None) as reader:
            assert orjson.loads(reader.recv(timeout=10))["type"] == "hello"
            wait_for(lambda: _stats(pipeline)["live_clients"] >= IDLE + 1, 30, "all connected")

            def read(n: int) -> None:
                while len(got) < n:
                    got.append(orjson.loads(reader.recv(timeout=60))["result"]["source"]["seq"])

            held = [0] * IDLE

            def evicted() -> bool:
                for i, s in enumerate(idle):  # what each idle client was made to take
                    held[i] = max(held[i], _queued(s))
                return bool(_stats(pipeline)["live_evicted"] - base["live_evicted"] == IDLE)

            with ThreadPoolExecutor(1) as pool:
                reading = pool.submit(read, 600)
                started = time.monotonic()
                pipeline.produce(_results(600, 0))
                wait_for(evicted, 60, f"{IDLE} idle clients closed")
                evicted_after = time.monotonic() - started
                reading.result(timeout=60)
        # Every idle socket was cut (the server aborts after the close grace).
        wait_for(
            lambda: all(_tcp_state(s) != TCP_ESTABLISHED for s in idle), 30, "idle sockets closed"
        )
    finally:
        for s in idle:
            s.close()
    assert got == list(range(600)), "the reader got every result, in order"
    # No idle client was made to take more than a new client's window (8 KiB) and one result:
    # the gateway waits for a pong (which never comes) before it sends more.
    assert 0 < max(held) <= FIRST_WINDOW + 4096, max(held)
    stats = _stats(pipeline)
    assert stats["live_clients"] == 0 or stats["live_clients"] < IDLE
    # Loose bound for a loaded 2-core machine; `streamsense bench fanout --idle-clients`
    # measures the time (and the reader's latency) properly.
    assert evicted_after < 30, evicted_after


def test_a_stalled_client_that_reads_again_finds_the_1013_close(pipeline: Pipeline) -> None:
    ws_url = f"ws://{urlsplit(pipeline.url).netloc}/ws/live?task=sentiment&source=stall"
    base = _stats(pipeline)["live_evicted"]
    parts = urlsplit(pipeline.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    with connect(
        ws_url, sock=sock, max_queue=1, max_size=None, compression=None, ping_interval=None
    ) as ws:
        assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
        text = "z" * 20_000
        pipeline.produce(
            [factory.result_record(factory.sentiment("stall", i, text=text)) for i in range(60)]
        )
        wait_for(lambda: _stats(pipeline)["live_evicted"] > base, 30, "the stalled client closed")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert "too slow" in closed.value.rcvd.reason


def _frame_header(length: int) -> bytes:
    """A masked text frame's header announcing ``length`` bytes of payload (mask key zero, so
    the payload reads as sent)."""
    if length < 126:
        head = struct.pack("!BB", 0x81, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
    return head + b"\0\0\0\0"


def _read_close(sock: socket.socket) -> int:
    """The code of the server's close frame (-1 without one)."""
    closed = rawws.close_frame(sock)
    return -1 if closed is None else closed[0]


def test_oversized_client_messages_close_the_socket_on_their_header(pipeline: Pipeline) -> None:
    for announced in (15 * 1024 * 1024, 4097):
        sock = _handshake(pipeline.url)
        try:
            sock.sendall(_frame_header(announced) + b"x" * 1024)  # and never the rest
            assert _read_close(sock) == 1009, announced  # "message too big"
        finally:
            sock.close()
    # A small message is read and ignored; the client stays subscribed.
    sock = _handshake(pipeline.url)
    try:
        sock.sendall(_frame_header(100) + b"x" * 100)
        with connect(f"ws://{urlsplit(pipeline.url).netloc}/ws/live") as probe:
            probe.recv(timeout=10)
        assert _tcp_state(sock) == TCP_ESTABLISHED
    finally:
        sock.close()
