"""Camera credentials kept out of the fleet file: ``password_env`` / ``password_file`` and
``source_env`` / ``source_file``. Before, the only way was the URL in the file, in clear
(``password_env:`` was an unknown field). A reference that cannot be resolved is one line
naming the camera and the variable or file (exit 2), never an empty password, and the secret
is shown nowhere: errors, ``--check``, logs, ``cameras.status``, the exit message."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from streamsense.services.cli.app import app
from streamsense.services.local import procs
from streamsense.services.producers.exceptions import FleetConfigError
from streamsense.services.producers.fleet_config import load_fleet
from streamsense.services.producers.redact import redact_url
from streamsense.services.producers.settings import CameraProducerSettings
from tests.producers.conftest import statuses

PASSWORD = "hun/ter#2?@x"  # every character that ends a URL's credentials when written raw
TOKEN = "tok3nSECRET"


def _fleet(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n" + body)
    return path


def test_the_password_comes_from_a_variable_or_a_file_percent_encoded(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "yard").write_text(PASSWORD + "\n")  # as `echo pw > file` writes
    (tmp_path / "shed-url").write_text(f"http://cam3/video.cgi?user=v&token={TOKEN}\r\n")
    path = _fleet(
        tmp_path,
        "  - {id: gate, source: 'rtsp://viewer@cam1:554/s?ch=1', password_env: GATE_PW}\n"
        "  - {id: yard, source: 'rtsp://viewer@cam2/s', password_file: secrets/yard}\n"
        "  - {id: door, source_env: DOOR_URL}\n"
        "  - {id: shed, source_file: shed-url}\n",
    )
    env = {"GATE_PW": PASSWORD, "DOOR_URL": f"rtsp://admin:{TOKEN}@cam4/s"}
    gate, yard, door, shed = load_fleet(path, CameraProducerSettings(), environ=env)
    encoded = "hun%2Fter%232%3F%40x"
    assert gate.source == f"rtsp://viewer:{encoded}@cam1:554/s?ch=1"
    assert yard.source == f"rtsp://viewer:{encoded}@cam2/s"
    assert door.source == f"rtsp://admin:{TOKEN}@cam4/s"
    assert shed.source == f"http://cam3/video.cgi?user=v&token={TOKEN}"
    for spec in (gate, yard, door, shed):
        assert PASSWORD not in redact_url(spec.source) and TOKEN not in redact_url(spec.source)
        assert encoded not in repr(spec) and TOKEN not in repr(spec), "a spec's repr hides it"
    assert redact_url(gate.source) == "rtsp://viewer:***@cam1:554/s?ch=1"


@pytest.mark.parametrize(
    ("camera", "env", "message"),
    [
        ("{id: gate, source: 'rtsp://viewer@cam/s', password_env: GATE_PW}", {},
         "cameras.yaml: camera 'gate' (cameras[0]): password_env: environment variable GATE_PW "
         "is not set"),
        ("{id: gate, source: 'rtsp://viewer@cam/s', password_env: GATE_PW}", {"GATE_PW": ""},
         "camera 'gate' (cameras[0]): password_env: environment variable GATE_PW is empty"),
        ("{id: gate, source: 'rtsp://viewer@cam/s', password_env: GATE_PW}",
         {"GATE_PW": "a\nb" + PASSWORD},
         "password_env: environment variable GATE_PW holds a line break or another control"),
        ("{id: gate, source: 'rtsp://viewer@cam/s', password_file: missing.txt}", {},
         "camera 'gate' (cameras[0]): password_file: cannot read "),
        ("{id: gate, source: 'rtsp://viewer@cam/s', password_file: empty.txt}", {},
         "camera 'gate' (cameras[0]): password_file: file empty.txt is empty"),
        ("{id: gate, source: 'rtsp://cam/s', password_env: GATE_PW}", {"GATE_PW": PASSWORD},
         "password_env: the source names no user: write it as rtsp://USER@host/... and the "
         "password comes from environment variable GATE_PW"),
        ("{id: gate, source: 'rtsp://viewer:old@cam/s', password_env: GATE_PW}",
         {"GATE_PW": PASSWORD}, "password_env: the source already holds a password"),
        ("{id: gate, source: 'videos/a.mp4', password_env: GATE_PW}", {"GATE_PW": PASSWORD},
         "password_env: a password needs a stream URL as source"),
        ("{id: gate, source: 'rtsp://v@cam/s', password_env: A, password_file: b}",
         {"A": PASSWORD}, "camera 'gate' (cameras[0]): give one of password_env and "
         "password_file, not both"),
        ("{id: gate, source_env: GATE_URL}", {},
         "camera 'gate' (cameras[0]): source_env: environment variable GATE_URL is not set"),
        ("{id: gate, source_env: GATE_URL}", {"GATE_URL": f"admin:{PASSWORD}@cam/s"},
         "source_env: the value of GATE_URL is not a stream URL"),
        ("{id: gate, source_env: GATE_URL}", {"GATE_URL": f"ftp://admin:{PASSWORD}@cam/s"},
         "source_env: the value of GATE_URL is not a stream URL"),
        ("{id: gate, source_env: GATE_URL}", {"GATE_URL": f"rtsp://admin:{PASSWORD}@cam:x/s"},
         "camera 'gate' (cameras[0]): source: invalid stream URL rtsp://admin:***@"),
        ("{id: gate, source: 'rtsp://cam/s', source_env: GATE_URL}", {"GATE_URL": "rtsp://c/s"},
         "give exactly one of source, source_env and source_file (got source and source_env)"),
        ("{id: gate}", {}, "give exactly one of source, source_env and source_file (got none)"),
        ("{id: gate, source_env: 'GATE URL'}", {},
         "camera 'gate' (cameras[0]): source_env: String should match pattern"),
        ("{id: gate, source_file: fifo}", {}, "source_file: "),
    ],
)  # fmt: skip
def test_a_reference_that_cannot_be_resolved_is_one_line_without_the_secret(
    tmp_path: Path, camera: str, env: dict[str, str], message: str
) -> None:
    (tmp_path / "empty.txt").write_text("\n")
    os.mkfifo(tmp_path / "fifo")  # must not block the loader
    path = _fleet(tmp_path, f"  - {camera}\n")
    with pytest.raises(FleetConfigError) as err:
        load_fleet(path, CameraProducerSettings(), environ=env)
    text = str(err.value)
    assert message in text and "\n" not in text, text
    assert PASSWORD not in text and "hun" not in text and "hun%2F" not in text


def test_the_cli_reads_the_process_environment_and_never_shows_the_password(
    tmp_path: Path,
) -> None:
    path = _fleet(tmp_path, "  - {id: gate, source: 'rtsp://viewer@cam/s', password_env: GW}\n")
    runner = CliRunner()
    res = runner.invoke(app, ["produce", "cameras", "--config", str(path), "--check"],
                        env={"GW": PASSWORD})  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "gate: rtsp://viewer:***@cam/s" in res.output
    assert "hun" not in res.output
    res = runner.invoke(app, ["produce", "cameras", "--config", str(path), "--check"],
                        env={"GW": None})  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "error: cameras.yaml: camera 'gate' (cameras[0]): password_env: environment " in (
        " ".join(res.output.split())
    )
    assert "Traceback" not in res.output


@pytest.mark.integration
def test_a_secret_from_the_environment_reaches_no_log_status_or_exit_message(
    stack: dict[str, str],
    frames_topic: Callable[[], str],
    status_topic: Callable[[], str],
    tmp_path: Path,
) -> None:
    """The whole run, as an operator starts it: both cameras unreachable, tried twice, lost
    (exit 3 with each camera's error); logs, statuses and the exit line hold no secret."""
    closed = procs.free_port()
    states = status_topic()
    retry = "reconnect: {initial_s: 0.1, max_s: 0.1, attempts: 2}"
    path = _fleet(
        tmp_path,
        f"  - {{id: gate, source: 'rtsp://viewer@127.0.0.1:{closed}/s', password_env: GATE_PW,"
        f" {retry}}}\n"
        f"  - {{id: yard, source_env: YARD_URL, {retry}}}\n",
    )
    yard_url = f"http://127.0.0.1:{closed}/video.cgi?user=v&token={TOKEN}"
    proc = subprocess.run(
        [sys.executable, "-m", "streamsense.services.cli", "produce", "cameras", "--config",
         str(path), "--topic", frames_topic()],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60,
        env={**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"],
             "STREAMSENSE_CAMERA_STATUS_TOPIC": states, "STREAMSENSE_LOG_LEVEL": "DEBUG",
             "GATE_PW": PASSWORD, "YARD_URL": yard_url},
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out
    line = " ".join(out.split())
    assert "every camera ended; ended on an error: gate (stream rtsp://viewer:***@127.0.0.1:" in (
        line
    )
    assert f"yard (stream http://127.0.0.1:{closed}/video.cgi?user=v&token=***" in line
    got = statuses(stack["bootstrap"], states, 4, timeout=30)  # each: reconnecting, offline
    assert {s.camera_id for s in got} == {"gate", "yard"}
    published = " ".join(orjson.dumps(s.model_dump()).decode() for s in got)
    for secret in ("hun", "hun%2F", TOKEN):
        assert secret not in out, out
        assert secret not in published, published
    assert "rtsp://viewer:***@127.0.0.1" in published
