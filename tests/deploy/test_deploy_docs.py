"""docs/deploy.md matches the files it describes: paths exist, services, commands, variables,
defaults and the KEDA table are the ones in the compose file and the manifests."""

from __future__ import annotations

import re
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_facts import ALL_COMMANDS, DEPLOY, ROOT, WORKERS, command_key

DOC = ROOT / "docs" / "deploy.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text()


def _split(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _table(doc: str, header: str) -> list[list[str]]:
    """Body rows of the markdown table whose first header cell starts with ``header``."""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and _split(line)[0].startswith(header):
            rows = []
            for body in lines[i + 2 :]:
                if not body.startswith("|"):
                    break
                rows.append(_split(body))
            return rows
    raise AssertionError(f"docs/deploy.md has no table headed {header!r}")


def _expand(path: str) -> list[str]:
    """`a/{b,c}/d` -> [a/b/d, a/c/d]."""
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in product(*choices)]


def test_every_path_named_exists(doc: str, compose: dict[str, Any]) -> None:
    images = {s["image"].rsplit(":", 1)[0] for s in compose["services"].values()}
    candidates = set(re.findall(r"`([^`\s]*/[^`\s]*|[\w.-]+\.(?:ya?ml|json|md|sh|py))`", doc))
    candidates |= set(re.findall(r"^\s{2}([\w/.-]+/)\s", doc, flags=re.M))  # the layout block
    checked = 0
    for raw in candidates:
        # URLs, container and home paths, variables, images, `prometheus.io/port`-like names
        if raw.startswith(("http", "/", "~", "oci:")) or "=" in raw or raw in images:
            continue
        if "/" in raw.rstrip("/") and "." in raw.split("/", 1)[0]:
            continue
        for path in _expand(raw.rstrip("/")):
            if "/" not in path:  # a bare file name: anywhere under the repo root or deploy/
                hits = [ROOT / path] if (ROOT / path).exists() else list(DEPLOY.rglob(path))
            else:
                roots = [ROOT, DEPLOY / "k8s"]
                hits = [p for r in roots for p in r.glob(path) if p.exists()]
            assert hits, f"docs/deploy.md names {raw!r}, which does not exist"
            checked += 1
    assert checked >= 20


def test_service_table_matches_compose_and_cli(doc: str, compose: dict[str, Any]) -> None:
    rows = _table(doc, "service (compose / Kubernetes name)")
    services = compose["services"]
    named = {r[0].strip("`"): r for r in rows if r[0].startswith("`")}
    assert {"worker-detect", "worker-segment", "worker-sentiment", "gateway"} <= set(named)
    for name, row in named.items():
        if name not in services:
            continue
        cmd = re.findall(r"`([^`]+)`", row[1])[0].split()
        assert command_key(cmd) in ALL_COMMANDS, row
        assert command_key(services[name]["command"]) == command_key(cmd), name
        if name.startswith("worker-"):
            group, topic = WORKERS[name.removeprefix("worker-")]
            assert row[2] == f"`{group}`" and row[3].startswith(f"`{topic}`"), row
    jobs = next(r for r in rows if r[0] == "jobs")
    assert {command_key(c.split()) for c in re.findall(r"`([^`]+)`", jobs[1])} == {
        k for k in ALL_COMMANDS if k[0] in ("topics", "models", "samples")
    }


def test_compose_variables_and_defaults_are_documented(doc: str) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = dict(re.findall(r"\$\{([A-Z_]+):-([^}]*)\}", text))
    rows = {r[0]: r for r in _table(doc, "variable")}
    documented: dict[str, str] = {}
    for key, row in rows.items():
        names = re.findall(r"[A-Z_]{4,}", key)
        defaults = re.findall(r"`([^`]*)`", row[1]) or [""]
        for name, default in zip(names, defaults * len(names), strict=False):
            documented[name] = "" if row[1] in ("empty", "") else default
    for var, default in used.items():
        assert var in documented, f"{var} is read by docker-compose.yml but not documented"
        assert documented[var] == default, f"{var}: compose {default!r}, docs {documented[var]!r}"


def test_scale_examples_name_real_services(doc: str, compose: dict[str, Any]) -> None:
    scaled = re.findall(r"--scale ([a-z-]+)=\d+", doc)
    assert scaled
    assert set(scaled) <= set(compose["services"])
    assert "--profile gpu" in doc
    profiles = {p for s in compose["services"].values() for p in s.get("profiles", [])}
    assert profiles == {"gpu"}


def test_keda_table_matches_the_scaledobjects(doc: str) -> None:
    base = _docs_of(DEPLOY / "k8s" / "base" / "keda.yaml")
    gpu_patch = yaml.safe_load((DEPLOY / "k8s/overlays/gpu/gpu-scaledobjects.yaml").read_text())
    gpu_lag = next(op["value"] for op in gpu_patch if op["path"].endswith("lagThreshold"))
    scaled = {d["metadata"]["name"]: d["spec"] for d in base if d["kind"] == "ScaledObject"}
    keda_rows = _table(doc, "worker")
    assert {r[0].strip("`") for r in keda_rows} == set(scaled)
    for name_cell, group, topic, lag, replicas in keda_rows:
        spec = scaled[name_cell.strip("`")]
        meta = spec["triggers"][0]["metadata"]
        assert group.strip("`") == meta["consumerGroup"]
        assert topic.strip("`") == meta["topic"]
        lags = [x.strip() for x in lag.split("/")]
        assert lags[0] == meta["lagThreshold"]
        if len(lags) == 2:
            assert lags[1] == gpu_lag
        assert replicas == f"{spec['minReplicaCount']}-{spec['maxReplicaCount']}"


def test_secret_table_matches_the_secrets(doc: str) -> None:
    secrets = {d["metadata"]["name"]: d for d in _docs_of(DEPLOY / "k8s/base/secrets.yaml")}
    rows = {r[0].strip("`"): r for r in _table(doc, "Secret")}
    assert set(rows) == set(secrets)
    for name, row in rows.items():
        keys = set(re.findall(r"`([a-z]+)`", row[1]))
        assert keys == set(secrets[name]["stringData"]), name


def _docs_of(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
