"""What a ``/ws/live`` client may send (the real gateway, real Redis pub/sub, raw sockets): a
live client has nothing to say but pongs, so one that floods pings or messages is closed with
1008 after a small budget, what it sends after that is not even parsed, and the other clients
and the API are served meanwhile. Clients that answer the gateway's pings, send a keepalive
ping now and then or an occasional message stay connected.

Before: one client sending tiny pings as fast as its socket took them (the gateway answered
each with a pong of its own write) held the event loop: ``/healthz`` took more than 10 s and a
result took 14 s to reach the other clients; a flood of tiny text messages stalled them 3.3 s.
Nothing ever closed the flooding client.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from websockets.sync.client import connect

from streamsense.schemas.registry import encode
from streamsense.services.gateway.server import ServerThread
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.gateway.wsconn import CLIENT_FRAME_BURST
from streamsense.services.serving.keys import RedisKeys
from tests.gateway import rawws
from tests.sink import factory

pytestmark = pytest.mark.integration

KEYS = RedisKeys("sswsframes")
TEXT, BINARY, PING = 0x1, 0x2, 0x9
POLICY_VIOLATION = 1008
#: Frames in one write of the flooders: far past the budget, well under a second of sending.
FLOOD = 20_000


@pytest.fixture(scope="module")
def gateway(stack: dict[str, str]) -> Iterator[ServerThread]:
    settings = GatewaySettings(
        redis_url=stack["redis_url"], redis_prefix=KEYS.prefix, gateway_port=0
    )
    with ServerThread(settings) as server:
        yield server


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (mask key zero, so the payload reads as sent)."""
    assert len(payload) < 126
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + b"\0\0\0\0" + payload


def _handshake(server: ServerThread) -> socket.socket:
    return rawws.handshake("127.0.0.1", server.port)


def _flood(sock: socket.socket, frames: bytes, stop: threading.Event) -> None:
    """Send ``frames`` again and again until told to stop or the gateway hangs up."""
    try:
        while not stop.is_set():
            sock.sendall(frames)
    except OSError:
        pass


@pytest.mark.parametrize(
    ("opcode", "payload"),
    [(PING, b"p"), (TEXT, b"{}"), (BINARY, b"\0")],
    ids=["pings", "texts", "binary"],
)
def test_a_flooding_client_is_closed_and_the_others_are_served(
    gateway: ServerThread, stack: dict[str, str], opcode: int, payload: bytes
) -> None:
    r = redis.Redis.from_url(stack["redis_url"])
    netloc = f"127.0.0.1:{gateway.port}"
    result = encode(factory.sentiment("reviews", 1))
    stop = threading.Event()
    flooder = _handshake(gateway)
    flooder.settimeout(10)
    try:
        with connect(f"ws://{netloc}/ws/live?task=sentiment", open_timeout=10) as reader:
            reader.recv(timeout=10)  # hello: subscribed
            sender = threading.Thread(
                target=_flood, args=(flooder, _frame(opcode, payload) * FLOOD, stop), daemon=True
            )
            sender.start()
            # The flooder is told why, with a close frame, and cut.
            closed = rawws.close_frame(flooder)
            assert closed is not None, "the flooding client was never closed"
            code, reason = closed
            assert code == POLICY_VIOLATION, closed
            assert "too many frames" in reason, reason
            # The others never waited on it: a result still arrives at once, /healthz answers.
            t0 = time.monotonic()
            r.publish(KEYS.channel("sentiment", "reviews"), result)
            assert '"type":"result"' in reader.recv(timeout=5)
            assert time.monotonic() - t0 < 2.0
            health = httpx.get(f"http://{netloc}/healthz", timeout=5)
            assert health.status_code == 200
    finally:
        stop.set()
        flooder.close()
        r.close()


def test_clients_that_keep_to_the_budget_stay_connected(gateway: ServerThread) -> None:
    netloc = f"127.0.0.1:{gateway.port}"
    sock = _handshake(gateway)
    sock.settimeout(1.0)
    try:
        # A burst up to the budget (keepalive pings, a stray message) is fine ...
        sock.sendall(_frame(PING, b"k") * (CLIENT_FRAME_BURST // 2))
        sock.sendall(_frame(TEXT, b'{"subscribe":"x"}') * (CLIENT_FRAME_BURST // 4))
        assert rawws.close_frame(sock, timeout=1.5) is None, "closed within its budget"
        # ... and a client library's own keepalive (ping every 0.2 s here) keeps its socket.
        with connect(f"ws://{netloc}/ws/live", ping_interval=0.2, open_timeout=10) as ws:
            ws.recv(timeout=10)
            time.sleep(3)
            ws.ping().wait(5)  # answered: still open
    finally:
        sock.close()
