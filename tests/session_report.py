"""What a CI log must still say when only its tail is kept: which tests failed, and why.

CI shows the last lines of a run. pytest's own "short test summary info" sits above the
warnings, the tracebacks of an interrupted session and the chatter of Kafka clients left
behind, so a red run could end without naming one test. This plugin keeps, for each failed
or erroring test phase, the test's id and the last line of its reason; the test that was
running if the session is interrupted; and the command lines of child processes still alive
at the end (killed, so they cannot print after pytest). ``make test`` prints the file after
pytest exits: the last thing in the log.

The file is ``$PYTEST_REPORT_FILE``; without it the plugin does nothing.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

_REPORT_ENV = "PYTEST_REPORT_FILE"
#: Lines fixtures add (:func:`note`): what the session's own services looked like at the end.
_NOTES: list[str] = []


def note(line: str) -> None:
    """Add ``line`` to the report (kept only when the report is written)."""
    _NOTES.append(line)


class SessionReport:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.running = ""

    @pytest.hookimpl
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.running = nodeid

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            kind = "FAILED" if report.when == "call" else f"ERROR at {report.when}"
            self.lines.append(f"{kind} {report.nodeid}: {_reason(report)}")

    @pytest.hookimpl
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.lines.append(
            f"INTERRUPTED while running {self.running or '(no test)'}: "
            f"{excinfo.typename}: {str(excinfo.value)[:300]}"
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        for pid, cmdline in _children(os.getpid()):
            self.lines.append(f"LEFT RUNNING (killed now): pid {pid}: {cmdline[:200]}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        lines = [*self.lines, *_NOTES]
        head = f"pytest exit status {int(exitstatus)}; {len(lines)} line(s) below"
        self.path.write_text("\n".join([head, *lines]) + "\n", encoding="utf-8")


def _reason(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else "(no message)")[:300]


def _children(parent: int) -> list[tuple[int, str]]:
    """Live direct children of ``parent`` (Linux ``/proc``), with their command lines."""
    found: list[tuple[int, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # after "(comm)": state, ppid, ...
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if int(ppid) != parent or state == "Z":
                continue
            raw = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        found.append((int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace").strip()))
    return found


def pytest_configure(config: pytest.Config) -> None:
    target = os.environ.get(_REPORT_ENV)
    if target:
        config.pluginmanager.register(SessionReport(Path(target)), "streamsense-session-report")
