"""Fixtures for the deployment tests; the shared facts live in deploy_facts.py."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_facts import ROOT, VALIDATE, load_yaml_docs


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def validated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Runs deploy/validate.sh once (tools installed on first use, then cached) and returns the
    folder of rendered manifests and the script's output."""
    out = tmp_path_factory.mktemp("rendered")
    proc = subprocess.run(
        ["bash", str(VALIDATE), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"deploy/validate.sh failed:\n{output}"
    return out, output


@pytest.fixture(scope="session")
def rendered(validated: tuple[Path, str]) -> dict[str, list[dict[str, Any]]]:
    """Rendered Kubernetes manifests per kustomization: base, cpu, gpu, strimzi."""
    out, _ = validated
    docs = {p.stem.removeprefix("k8s-"): load_yaml_docs(p) for p in out.glob("k8s-*.yaml")}
    assert {"base", "cpu", "gpu", "strimzi"} <= set(docs), sorted(docs)
    return docs
