"""deploy/validate.sh: every deployment file passes the offline validators, and the validators
themselves reject broken files (so a green run means something)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.deploy_facts import DEPLOY, ROOT, TOOLS

pytestmark = pytest.mark.slow

EXPECTED_STEPS = [
    "healthcheck script compiles",
    "docker-compose.yml against the compose spec",
    "prometheus and grafana files parse",
    "kustomize build deploy/k8s/base",
    "kustomize build deploy/k8s/overlays/cpu",
    "kustomize build deploy/k8s/overlays/gpu",
    "kustomize build deploy/k8s/strimzi",
    "kubernetes manifests (kubernetes-validate --strict + CRD schemas)",
]


def test_validate_script_runs_every_check(validated: tuple[Path, str]) -> None:
    _, output = validated
    for step in EXPECTED_STEPS:
        assert f"ok   {step}" in output, f"step {step!r} did not pass:\n{output}"
    if (TOOLS / "venv/bin/hadolint").exists():
        assert "ok   hadolint deploy/docker/Dockerfile" in output
    if (TOOLS / "venv/bin/shellcheck").exists():
        assert "ok   shellcheck deploy/validate.sh" in output
    assert "all deployment checks passed" in output
    # every overlay was checked against both Kubernetes versions, custom resources structurally
    for name in ("base", "cpu", "gpu", "strimzi"):
        assert f"k8s-{name}.yaml:" in output
    assert "checked against Kubernetes 1.30.0, 1.37.0" in output


def test_compose_v1_renders_both_profiles(validated: tuple[Path, str]) -> None:
    out, output = validated
    if "docker-compose v1 not available" in output:
        pytest.skip("Debian's docker-compose is not installable here")
    default = yaml.safe_load((out / "compose.yaml").read_text())["services"]
    gpu = yaml.safe_load((out / "compose-gpu.yaml").read_text())["services"]
    # the gpu profile is opt-in: only the GPU workers carry it
    profiled = {name for name, svc in default.items() if svc.get("profiles")}
    assert profiled == {"worker-detect-gpu", "worker-segment-gpu"}
    assert all(default[name]["profiles"] == ["gpu"] for name in profiled)
    assert gpu["worker-detect-gpu"]["build"]["args"]["TF_EXTRA"] == "gpu"
    # anchors and merge keys resolved: every streamsense service got the shared settings
    assert default["worker-detect"]["environment"]["STREAMSENSE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert gpu["worker-detect-gpu"]["environment"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def _run_validator(tmp_path: Path, docs: list[dict]) -> subprocess.CompletedProcess[str]:
    python = TOOLS / "venv/bin/python"
    if not python.exists():
        pytest.skip("validation tools not installed (deploy/validate.sh installs them)")
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return subprocess.run(
        [
            str(python),
            str(DEPLOY / "validate_k8s.py"),
            "--schemas",
            str(DEPLOY / "k8s/schemas"),
            "-k",
            "1.30.0",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def base_docs(rendered: dict[str, list[dict]]) -> list[dict]:
    return [dict(d) for d in rendered["base"]]


def _find(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_validator_accepts_the_rendered_base(tmp_path: Path, base_docs: list[dict]) -> None:
    proc = _run_validator(tmp_path, base_docs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 custom checked structurally" in proc.stdout


def test_validator_rejects_unknown_deployment_field(tmp_path: Path, base_docs: list[dict]) -> None:
    deploy = _find(base_docs, "Deployment", "gateway")
    deploy["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    proc = _run_validator(tmp_path, base_docs)
    assert proc.returncode == 1
    assert "Deployment/gateway" in proc.stderr and "livenesProbe" in proc.stderr


def test_validator_rejects_numeric_keda_metadata(tmp_path: Path, base_docs: list[dict]) -> None:
    scaled = _find(base_docs, "ScaledObject", "worker-detect")
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 50  # KEDA wants strings
    proc = _run_validator(tmp_path, base_docs)
    assert proc.returncode == 1
    assert "ScaledObject/worker-detect" in proc.stderr and "lagThreshold" in proc.stderr


def test_validator_rejects_kinds_it_cannot_check(tmp_path: Path) -> None:
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    proc = _run_validator(tmp_path, [doc])
    assert proc.returncode == 1
    assert "Widget/w" in proc.stderr


def test_validator_rejects_zookeeper_in_strimzi_v1(tmp_path: Path, rendered: dict) -> None:
    docs = [dict(d) for d in rendered["strimzi"]]
    kafka = _find(docs, "Kafka", "streamsense")
    kafka["spec"]["zookeeper"] = {"replicas": 3}
    proc = _run_validator(tmp_path, docs)
    assert proc.returncode == 1
    assert "zookeeper" in proc.stderr
