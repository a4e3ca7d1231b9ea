"""The CI tail names what failed: tests/session_report.py, run on a small session of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SESSION = """
import subprocess
import sys


def test_passes():
    pass


def test_fails():
    assert 1 == 2, "one is not two"


def test_leaves_a_child_behind():
    global CHILD
    CHILD = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
"""


def _pytest(tmp_path: Path, source: str, report: Path | None) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a pytest session of its own with the plugin loaded."""
    (tmp_path / "test_session.py").write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_REPORT_FILE"}
    env["PYTHONPATH"] = str(ROOT)
    if report is not None:
        env["PYTEST_REPORT_FILE"] = str(report)
    args = ["-q", "-p", "tests.session_report", "-p", "no:cacheprovider",
            "-W", "ignore::ResourceWarning", str(tmp_path / "test_session.py")]  # fmt: skip
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_report_names_failures_and_kills_children_left_running(tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    run = _pytest(tmp_path, SESSION, report)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = report.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("pytest exit status 1")
    failed = [line for line in lines if line.startswith("FAILED")]
    assert failed == ["FAILED test_session.py::test_fails: AssertionError: one is not two"]
    left = [line for line in lines if line.startswith("LEFT RUNNING")]
    assert len(left) == 1 and "time.sleep(600)" in left[0]
    pid = int(left[0].split("pid ")[1].split(":")[0])
    assert (
        not Path(f"/proc/{pid}").exists()
        or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    )


def test_without_the_variable_nothing_is_written(tmp_path: Path) -> None:
    run = _pytest(tmp_path, "def test_ok():\n    pass\n", None)
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_session.py"]
