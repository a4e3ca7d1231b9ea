"""The image: deploy/docker/Dockerfile parsed (no Docker engine here), .dockerignore, and the
container health check script run against real HTTP servers."""

from __future__ import annotations

import fnmatch
import json
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.deploy.deploy_facts import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
HEALTHCHECK = DEPLOY / "docker" / "healthcheck.py"


@dataclass
class Instruction:
    cmd: str
    args: str


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction]

    def all(self, cmd: str) -> list[str]:
        return [i.args for i in self.instructions if i.cmd == cmd]


def parse_dockerfile(text: str) -> tuple[list[Instruction], list[Stage]]:
    """Instructions (line continuations joined, comments dropped) and the build stages."""
    lines: list[str] = []
    buf = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        lines.append(buf + stripped)
        buf = ""
    instructions = [Instruction(*(line.split(None, 1) + [""])[:2]) for line in lines]
    for ins in instructions:
        ins.cmd = ins.cmd.upper()
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    for ins in instructions:
        if ins.cmd == "FROM":
            parts = ins.args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else ""
            stages.append(Stage(parts[0], name, []))
        elif stages:
            stages[-1].instructions.append(ins)
        else:
            global_args.append(ins)
    return global_args + [i for s in stages for i in s.instructions], stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())[1]


def test_multi_stage_with_slim_python_runtime(stages: list[Stage]) -> None:
    names = [s.name for s in stages]
    assert len(stages) >= 2 and "builder" in names
    runtime = stages[-1]
    assert runtime.name == "runtime", "the last stage is the default target"
    text = DOCKERFILE.read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert runtime.base == "${PYTHON_IMAGE}"
    # the runtime gets the virtualenv from the builder, not compilers
    assert any("--from=builder" in a and "/opt/streamsense" in a for a in runtime.all("COPY"))
    assert not any("build-essential" in a for a in runtime.all("RUN"))
    # every COPY --from names an earlier stage
    for i, stage in enumerate(stages):
        for args in stage.all("COPY"):
            for word in args.split():
                if word.startswith("--from="):
                    assert word.removeprefix("--from=") in names[:i], args


def test_runtime_runs_as_numeric_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].all("USER")
    assert users, "runtime stage must switch user"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert gid.isdigit() and int(gid) != 0
    # the user the RUN created is the one USER names
    assert any(f"--uid {uid}" in a for a in stages[-1].all("RUN"))


def test_entrypoint_is_the_cli_in_exec_form(stages: list[Stage]) -> None:
    runtime = stages[-1]
    assert json.loads(runtime.all("ENTRYPOINT")[-1]) == ["streamsense"]
    assert json.loads(runtime.all("CMD")[-1]) == ["--help"]


def test_model_store_volume_and_env(stages: list[Stage]) -> None:
    runtime = stages[-1]
    volumes = json.loads(runtime.all("VOLUME")[-1])
    assert "/models" in volumes and "/data" in volumes
    env = " ".join(runtime.all("ENV"))
    assert "STREAMSENSE_MODEL_STORE=/models" in env
    assert "STREAMSENSE_METRICS_HOST=0.0.0.0" in env  # reachable by probes and Prometheus
    assert "STREAMSENSE_METRICS_PORT=9100" in env
    exposed = " ".join(runtime.all("EXPOSE")).split()
    assert {"9100", "8000"} <= set(exposed)


def test_healthcheck_uses_the_shipped_script(stages: list[Stage]) -> None:
    runtime = stages[-1]
    (hc,) = runtime.all("HEALTHCHECK")
    assert "--interval=" in hc and "--timeout=" in hc and "--start-period=" in hc
    assert hc.split("CMD", 1)[1].strip() == '["streamsense-healthcheck"]'
    assert any(
        "healthcheck.py /usr/local/bin/streamsense-healthcheck" in a for a in runtime.all("COPY")
    )


def test_tensorflow_extra_selects_cpu_or_gpu(stages: list[Stage]) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(req.startswith("tensorflow-cpu") for req in extras["cpu"])
    assert any(req.startswith("tensorflow[and-cuda]") for req in extras["gpu"])
    builder = next(s for s in stages if s.name == "builder")
    assert "TF_EXTRA=cpu" in builder.all("ARG")
    assert any('".[${TF_EXTRA}]"' in a for a in builder.all("RUN"))


def test_node_and_npm_for_models_fetch(stages: list[Stage]) -> None:
    runtime = stages[-1]
    copies = " ".join(runtime.all("COPY"))
    assert "/usr/local/bin/node" in copies
    assert "node_modules/npm" in copies
    assert any("bin/npm" in a for a in runtime.all("RUN"))


def _ignored(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    result = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.lstrip("!")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", "")) for p in prefixes
        ):
            result = not neg
    return result


def test_dockerignore_keeps_the_package_and_drops_the_rest() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (
        "pyproject.toml",
        "schemas/base.py",
        "models/__init__.py",
        "services/cli/app.py",
        "deploy/docker/healthcheck.py",
    ):
        assert not _ignored(patterns, needed), needed
    for dropped in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/deploy/test_deploy.py",
        "docs/deploy.md",
        "deploy/k8s/base/gateway.yaml",
        "services/__pycache__/x.pyc",
    ):
        assert _ignored(patterns, dropped), dropped


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[ThreadingHTTPServer, type[_Handler]]]:
    handler = type("H", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()
    thread.join(5)


def _check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def test_healthcheck_passes_on_200_and_fails_on_503(health_server) -> None:
    server, handler = health_server
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    assert _check(url).returncode == 0
    handler.status = 503
    proc = _check(url)
    assert proc.returncode == 1 and "503" in proc.stderr


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_healthcheck_defaults_to_the_metrics_port(health_server) -> None:
    server, _ = health_server
    ok = _check(env={"STREAMSENSE_METRICS_PORT": str(server.server_address[1])})
    assert ok.returncode == 0, ok.stderr
    down = _check(env={"STREAMSENSE_METRICS_PORT": str(_closed_port())})
    assert down.returncode == 1 and "unhealthy" in down.stderr


def test_healthcheck_refuses_non_http_urls() -> None:
    proc = _check("file:///etc/passwd")
    assert proc.returncode == 1 and "not an http" in proc.stderr
