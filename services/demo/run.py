"""``streamsense demo run``: the whole pipeline on the sample data, as separate processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live

from streamsense.schemas.catalog import TASK_NAMES
from streamsense.services.demo.live import ResultsView
from streamsense.services.demo.processes import Supervisor
from streamsense.services.local.procs import free_port
from streamsense.services.settings import StreamsenseSettings


def feed_lines(source: Path, target: Path, per_s: float, stop: threading.Event) -> None:
    """Append the sample log to ``target`` line by line, like a live application would."""
    lines = source.read_text().splitlines()
    target.write_text("")
    i = 0
    with target.open("a") as out:
        while not stop.wait(1 / per_s):
            out.write(lines[i % len(lines)] + "\n")
            out.flush()
            i += 1


def run_demo(settings: StreamsenseSettings, samples: Path, seconds: float, console: Console) -> int:
    work = settings.home / "demo"
    sup = Supervisor(
        work / "logs",
        env={
            "STREAMSENSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "STREAMSENSE_REDIS_URL": settings.redis_url.get_secret_value(),
        },
    )
    gateway_port = free_port()
    stop = threading.Event()
    live_log = work / "live.log"
    feeder = threading.Thread(
        target=feed_lines, args=(samples / "sample.log", live_log, 5.0, stop), daemon=True
    )
    view = ResultsView(settings)
    for task in TASK_NAMES:
        sup.start(
            f"worker-{task}", "worker", task, env={"STREAMSENSE_METRICS_PORT": str(free_port())}
        )
    sup.start("sink-redis", "sink", "redis", env={"STREAMSENSE_METRICS_PORT": str(free_port())})
    sup.start("gateway", "gateway", env={"STREAMSENSE_GATEWAY_PORT": str(gateway_port)})
    sup.start(
        "camera",
        "produce",
        "camera",
        "--source",
        str(samples / "sample.mp4"),
        "--camera-id",
        "cam-1",
        "--loop",
        "--fps",
        "5",
    )
    feeder.start()
    sup.start(
        "text", "produce", "text", "--path", str(live_log), "--follow", "--source-id", "app.log"
    )
    console.print(
        f"dashboard: http://127.0.0.1:{gateway_port}/   logs: {sup.log_dir}   (Ctrl-C stops)"
    )
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    try:
        with Live(view.table(), console=console, refresh_per_second=4) as live:
            while time.monotonic() < deadline:
                view.poll(0.25)
                live.update(view.table())
                if sup.failed():
                    break
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        codes = sup.stop()
        view.close()
    failed = {n: c for n, c in codes.items() if c not in (0, None)}
    empty = [task for task, st in view.stats.items() if st.count == 0]
    if failed:
        console.print(f"services that failed: {failed}; see {sup.log_dir}", style="red")
    if empty:
        console.print(f"no results for: {', '.join(empty)}; see {sup.log_dir}", style="red")
    replayed = {task: st.backlog for task, st in view.stats.items() if st.backlog}
    if replayed:
        console.print(
            "results for inputs from before the demo (a backlog on this stack's topics, "
            f"counted apart, not in p50): {replayed}"
        )
    return 1 if failed or empty else 0
