"""``produce camera`` takes a URL with a password from STREAMSENSE_CAMERA_SOURCE, so that it is
not on the command line, where every user of the machine reads it in ``ps``; a password given
with ``--source`` still works, with a warning. No secret reaches the output either way."""

from __future__ import annotations

import logging
import socket

import pytest
from typer.testing import CliRunner

from streamsense.services.cli.app import app

SECRET = "hunter2-s3cret"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _url() -> str:
    return f"rtsp://viewer:{SECRET}@127.0.0.1:{_closed_port()}/stream1"


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["produce", "camera", "--camera-id", "door", *args], env=env)
    return res.exit_code, res.output


def test_the_source_comes_from_the_environment_and_is_shown_without_its_password() -> None:
    code, out = _run([], {"STREAMSENSE_CAMERA_SOURCE": _url()})
    assert code == 2, out  # nothing listens there: the source cannot be opened
    assert "rtsp://viewer:***@127.0.0.1" in out, out
    assert SECRET not in out


def test_a_source_given_twice_or_not_at_all_is_refused() -> None:
    code, out = _run(["--source", "videos/door.mp4"], {"STREAMSENSE_CAMERA_SOURCE": _url()})
    assert code == 2 and "--source or STREAMSENSE_CAMERA_SOURCE" in out, out
    assert SECRET not in out
    code, out = _run([], {"STREAMSENSE_CAMERA_SOURCE": ""})
    assert code == 2 and "no source: give --source" in out, out


def test_a_password_on_the_command_line_is_used_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    code, out = _run(["--source", _url()], {"STREAMSENSE_CAMERA_SOURCE": ""})
    assert code == 2 and "rtsp://viewer:***@127.0.0.1" in out, out
    warned = [r.getMessage() for r in caplog.records if "reads in `ps`" in r.getMessage()]
    assert warned and "STREAMSENSE_CAMERA_SOURCE" in warned[0], warned
    assert SECRET not in out + " ".join(warned)
