"""Camera URLs as operators really write them: passwords with unencoded ``/``, ``#`` or ``@``,
credentials in the query, ports out of range, mistyped schemes. No secret reaches a log line,
an error, ``--check``, health or ``cameras.status``, none goes over the wire in clear, and a URL
no reader can use is refused at load (exit 2), not found out by a crashing reader (exit 0)."""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from streamsense.services.cli.app import app
from streamsense.services.local import procs
from streamsense.services.producers.exceptions import FleetConfigError, SourceError
from streamsense.services.producers.fleet import CameraFleet
from streamsense.services.producers.fleet_config import load_fleet
from streamsense.services.producers.probe import probe_stream
from streamsense.services.producers.redact import redact_url
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.producers.sources import open_source
from tests.producers.conftest import statuses

SECRETS = ("s3c", "ret@", "hunter2", "tok3n")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:s3cret@10.0.0.5:554/live?ch=1", "rtsp://admin:***@10.0.0.5:554/live?ch=1"),
        # not percent-encoded: a URL parser finds no password there, and printed it whole
        ("rtsp://admin:s3c/ret@cam/s", "rtsp://admin:***@cam/s"),
        ("rtsp://admin:s3c#ret@cam/s", "rtsp://admin:***@cam/s"),
        ("rtsp://admin:s3c?ret@cam/s", "rtsp://admin:***@cam/s"),
        ("rtsp://admin:s3c@ret@cam/s", "rtsp://admin:***@cam/s"),
        ("rtsp://admin:s3cret@[zz/s", "rtsp://admin:***@[zz/s"),
        ("http://:s3cret@cam/x.mjpg", "http://***@cam/x.mjpg"),
        ("https://s3cret-token@cam/x.mjpg", "https://***@cam/x.mjpg"),
        # credentials as query parameters (many IP cameras' snapshot and stream URLs)
        ("http://cam/video.cgi?user=admin&password=hunter2&res=hd",
         "http://cam/video.cgi?user=admin&password=***&res=hd"),
        ("rtsp://cam/s?PWD=hunter2;auth_token=tok3n#x", "rtsp://cam/s?PWD=***;auth_token=***#x"),
        # mistyped scheme: taken for a path, shown in "no such file" errors
        ("rtsp:/admin:s3cret@cam/s", "rtsp:/admin:***@cam/s"),
        ("rtsp://10.0.0.5/live", "rtsp://10.0.0.5/live"),
        ("videos/door.mp4", "videos/door.mp4"),
    ],
)  # fmt: skip
def test_a_url_is_shown_without_its_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("rtsp://admin:s3cret@cam:99999/s",
         "invalid stream URL rtsp://admin:***@cam:99999/s: the port is not a number from 0 to "
         "65535; in a password, write / # ? @ as %2F %23 %3F %40"),
        ("rtsp://admin:s3c/ret@cam/s", "invalid stream URL rtsp://admin:***@cam/s: the port"),
        ("rtsp://cam:x/s", "invalid stream URL rtsp://cam:x/s: the port is not a number from 0 "
         "to 65535"),
        ("rtsp://admin:s3cret@[zz/s",
         "invalid stream URL rtsp://admin:***@[zz/s: the host is not a valid [IPv6] address"),
        ("rtsp:///s?password=hunter2", "stream URL rtsp:///s?password=*** names no host"),
        ("rtsp:/admin:s3cret@cam/s", "no such file or folder: rtsp:/admin:***@cam/s"),
        ("rtsp:/admin:s3cret@cam/s?x", "no images in glob rtsp:/admin:***@cam/s?x"),
    ],
)  # fmt: skip
def test_a_url_no_reader_can_use_is_refused_when_named_without_its_secret(
    source: str, message: str, tmp_path: Path
) -> None:
    """Before: a bad port passed ``--check``; the camera's reader then died on a ValueError
    (a traceback), and a fleet of such cameras exited 0."""
    with pytest.raises(SourceError) as err:
        open_source(source)
    assert message in str(err.value)
    assert not any(s in str(err.value) for s in SECRETS)
    path = tmp_path / "cameras.yaml"
    path.write_text(f"cameras:\n  - {{id: a, source: '{source}'}}\n")
    with pytest.raises(FleetConfigError) as ferr:
        load_fleet(path, CameraProducerSettings())
    assert "camera 'a' (cameras[0]): source: " in str(ferr.value)
    assert not any(s in str(ferr.value) for s in SECRETS)
    res = CliRunner().invoke(app, ["produce", "cameras", "--config", str(path), "--check"])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and not any(s in res.output for s in SECRETS)


class _Listener:
    """A TCP server that answers every request as an RTSP server and keeps what it was sent."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.received.append(conn.recv(4096))
                conn.sendall(b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\r\n")

    def close(self) -> None:
        self.sock.close()


def test_the_stream_probe_never_sends_the_credentials() -> None:
    """Before: ``OPTIONS rtsp://admin:s3cret@host/...`` went over the wire in clear at every
    (re)connection, where FFmpeg itself sends a Digest answer when the camera asks."""
    server = _Listener()
    try:
        url = f"rtsp://admin:s3cret@127.0.0.1:{server.port}/live?ch=1"
        probe_stream(url, redact_url(url), 5.0)
        (request,) = server.received
    finally:
        server.close()
    line = f"OPTIONS rtsp://127.0.0.1:{server.port}/live?ch=1 RTSP/1.0\r\n"
    assert request.startswith(line.encode())
    assert b"s3cret" not in request and b"admin" not in request


@pytest.mark.integration
def test_no_secret_reaches_the_logs_health_or_cameras_status(
    stack: dict[str, str],
    frames_topic: Callable[[], str],
    status_topic: Callable[[], str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    states = status_topic()
    closed = procs.free_port()  # nothing listens: the camera is tried twice, then lost
    path = tmp_path / "cameras.yaml"
    path.write_text(
        "cameras:\n"
        f"  - id: gate\n    source: 'http://viewer@127.0.0.1:{closed}/video.cgi?password=hunter2'\n"
        "    reconnect: {initial_s: 0.1, max_s: 0.1, attempts: 2}\n"
        f"  - id: yard\n    source: 'rtsp://admin:s3c#ret@127.0.0.1:{closed}/s'\n"
    )
    settings = CameraProducerSettings(
        kafka_bootstrap=stack["bootstrap"], camera_topic=frames_topic(),
        camera_status_topic=states, camera_status_interval_s=0.2,
        service_name=f"test-secrets-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    with pytest.raises(FleetConfigError) as err:  # '#' ends the authority: port "s3c" is no port
        load_fleet(path, settings)
    assert "cameras[1]" in str(err.value) and "the port is not a number" in str(err.value)
    assert "s3c" not in str(err.value) and "ret@" not in str(err.value)
    path.write_text(path.read_text().split("  - id: yard")[0])
    caplog.set_level(logging.DEBUG, logger="streamsense")
    fleet = CameraFleet(settings, load_fleet(path, settings))
    fleet.run()  # ends by itself: its only camera is lost after 2 attempts
    (lost,) = fleet.lost()
    ok, detail = fleet.health()
    got = statuses(stack["bootstrap"], states, 10, timeout=3)  # all of them: 1 to 3
    assert got and got[-1].state == "offline"
    published = b" ".join(orjson.dumps(s.model_dump()) for s in got)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for where in (published.decode(), logged, orjson.dumps(detail).decode(), str(lost.error)):
        assert "hunter2" not in where and "viewer" not in where, where
    assert f"http://***@127.0.0.1:{closed}/video.cgi?password=***" in got[-1].source
    assert not ok
