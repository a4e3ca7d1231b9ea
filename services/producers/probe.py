"""Is a stream's server answering? Asked before OpenCV opens it, outside OpenCV's lock.

OpenCV opens FFmpeg streams one at a time: a process-wide lock is held for the whole
``avformat_open_input`` and stream probing. A server that accepts the connection and never
answers (a hung camera, a process stopped with SIGSTOP) held it for the full open timeout, and
every other camera of the fleet waited: measured, a healthy RTSP camera took 5.34 s instead of
0.64 s to open while a silent one was being tried. So each reader first asks the server itself
(an RTSP ``OPTIONS``, an HTTP ``HEAD``; a TCP connection for the other schemes), in its own
thread and with the open timeout, and only a server that answers goes on to OpenCV.
"""

from __future__ import annotations

import socket
import ssl
import time
from urllib.parse import SplitResult, urlsplit, urlunsplit

from streamsense.services.producers.exceptions import SourceError

_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935,
                  "rtmps": 443, "srt": 0, "tcp": 0, "udp": 0}  # fmt: skip
_TLS = frozenset({"rtsps", "https", "rtmps"})
#: Most bytes of the answer read: its status line is all the probe needs.
_MAX_ANSWER = 4096


def _request(scheme: str, parts: SplitResult, host: str) -> bytes | None:
    if scheme in ("rtsp", "rtsps"):
        # no credentials in the URI (FFmpeg sends them only as the server's auth asks, never here)
        uri = urlunsplit(parts._replace(netloc=host, fragment=""))
        return f"OPTIONS {uri} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: streamsense\r\n\r\n".encode()
    if scheme in ("http", "https"):
        return f"HEAD {parts.path or '/'} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
    return None  # other protocols: the TCP connection is the answer


def probe_stream(url: str, shown: str, timeout_s: float) -> None:
    """Return when the server of ``url`` answers within ``timeout_s``; SourceError naming
    ``shown`` (the URL without its password) and what failed otherwise. UDP and SRT (UDP
    based) are not probed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    if scheme in ("udp", "srt") or not parts.hostname or not port:
        return
    deadline = time.monotonic() + timeout_s
    try:
        sock = socket.create_connection((parts.hostname, port), timeout=timeout_s)
    except OSError as exc:
        msg = f"cannot connect to {shown}: {exc.strerror or exc}"
        raise SourceError(msg) from exc
    try:
        if scheme in _TLS:
            context = ssl.create_default_context()
            context.check_hostname = False  # FFmpeg decides about certificates; this only asks
            context.verify_mode = ssl.CERT_NONE  # noqa: S503 - whether the server answers
            sock = context.wrap_socket(sock, server_hostname=parts.hostname)
        request = _request(scheme, parts, parts.netloc.rpartition("@")[2])
        if request is None:
            return
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        sock.sendall(request)
        answer = sock.recv(_MAX_ANSWER)
    except TimeoutError as exc:
        msg = f"{shown} accepted the connection but did not answer within {timeout_s:g} s"
        raise SourceError(msg) from exc
    except (OSError, ssl.SSLError) as exc:
        msg = f"{shown} accepted the connection, then failed: {exc.strerror or exc}"
        raise SourceError(msg) from exc
    finally:
        sock.close()
    if not answer.startswith((b"RTSP/", b"HTTP/")):
        msg = f"{shown} answered, but not as an {scheme.upper()} server"
        raise SourceError(msg)
