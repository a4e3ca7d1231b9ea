"""Live progress for the producers: a rich table on a terminal, a log line every few seconds
otherwise (containers, CI), and a final summary either way."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

log = logging.getLogger(__name__)

Snapshot = Mapping[str, int | float | str]


class RateWindow:
    """Per-second rates of monotonically growing counters over a sliding window."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, Snapshot]] = deque()

    def update(self, now: float, counters: Snapshot) -> dict[str, float]:
        self._samples.append((now, counters))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        t0, first = self._samples[0]
        dt = now - t0
        rates: dict[str, float] = {}
        for key, value in counters.items():
            old = first.get(key)
            if isinstance(value, int | float) and isinstance(old, int | float):
                rates[key] = (value - old) / dt if dt > 0 else 0.0
        return rates


def _fmt(value: int | float | str) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


class LiveProgress:
    """Shows ``snapshot()`` plus the rates named in ``rates`` ({column: (counter, scale)})."""

    def __init__(
        self,
        title: str,
        snapshot: Callable[[], Snapshot],
        rates: Mapping[str, tuple[str, float]],
        console: Console | None = None,
        hidden: frozenset[str] = frozenset(),
        log_every_s: float = 10.0,
    ) -> None:
        self.title = title
        self._snapshot = snapshot
        self._rates = rates
        self._hidden = hidden
        self._window = RateWindow()
        self.console = console or Console(stderr=True, markup=False, emoji=False, highlight=False)
        self._log_every_s = log_every_s
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()

    def row(self) -> dict[str, str]:
        snap = self._snapshot()
        rates = self._window.update(time.monotonic(), snap)
        out = {
            col: f"{rates.get(key, 0.0) * scale:,.1f}" for col, (key, scale) in self._rates.items()
        }
        out.update({k: _fmt(v) for k, v in snap.items() if k not in self._hidden})
        return out

    def _render(self) -> Table:
        row = self.row()
        table = Table(*row.keys(), title=Text(self.title), title_justify="left")
        table.add_row(*row.values())
        return table

    def _log_loop(self) -> None:
        while not self._stop.wait(self._log_every_s):
            log.info("%s: %s", self.title, " ".join(f"{k}={v}" for k, v in self.row().items()))

    def __enter__(self) -> LiveProgress:
        self._started = time.monotonic()
        self._window.update(self._started, self._snapshot())
        if self.console.is_terminal:
            self._live = Live(get_renderable=self._render, console=self.console,
                              refresh_per_second=4, transient=True)  # fmt: skip
            self._live.start()
        else:
            self._thread = threading.Thread(target=self._log_loop, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._live is not None:
            self._live.stop()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.summary()

    def summary(self) -> None:
        """The totals and the average rates over the whole run."""
        snap = self._snapshot()
        elapsed = max(time.monotonic() - self._started, 1e-9)
        # Text: a path or an id is shown as it is (no ":b:" emoji codes, no markup)
        title = Text(f"{self.title}: {elapsed:.1f} s")
        table = Table("", "total", title=title, title_justify="left")
        for col, (key, scale) in self._rates.items():
            value = snap.get(key, 0)
            if isinstance(value, int | float):
                table.add_row(f"{col} (average)", f"{value * scale / elapsed:,.1f}")
        for k, v in snap.items():
            if k not in self._hidden:
                table.add_row(k, _fmt(v))
        self.console.print(table)
