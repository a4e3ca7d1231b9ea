"""docs/reliability.md stays true: every setting it names exists, the soak command it shows
takes the options it uses."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from streamsense.services.cli.app import app
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.sink.settings import SinkSettings
from streamsense.services.workers.settings import WorkerSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def test_every_setting_named_in_the_doc_exists() -> None:
    names = set(re.findall(r"STREAMSENSE_([A-Z0-9_]+)", DOC.read_text()))
    assert {"KAFKA_SASL_PASSWORD", "KAFKA_GROUP_INSTANCE_ID", "REDIS_URL", "GATEWAY_TOKEN"} <= names
    fields = {
        f.upper()
        for cls in (WorkerSettings, SinkSettings, GatewaySettings)
        for f in cls.model_fields
    }
    assert sorted(names - fields) == []


def test_the_soak_command_in_the_doc_takes_its_options() -> None:
    (cmd,) = re.findall(r"^streamsense bench soak .*$", DOC.read_text(), re.MULTILINE)
    options = re.findall(r"(--[a-z-]+)", cmd)
    res = CliRunner().invoke(app, ["bench", "soak", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for opt in options:
        assert opt in res.output, opt


def test_the_hostile_bench_command_in_the_doc_takes_its_options() -> None:
    (cmd,) = re.findall(r"^streamsense bench hostile .*$", DOC.read_text(), re.MULTILINE)
    res = CliRunner().invoke(app, ["bench", "hostile", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for opt in re.findall(r"(--[a-z-]+)", cmd):
        assert opt in res.output, opt
