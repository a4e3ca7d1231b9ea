"""``streamsense bench ...``: benchmarks that write JSON results."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from streamsense.schemas.catalog import TASK_NAMES, Task
from streamsense.services.cli.entry import EXIT_USAGE, fail, settings_from
from streamsense.services.cli.entry import console as entry_console
from streamsense.services.settings import StreamsenseSettings

app = typer.Typer(help="Benchmarks; each writes its figures as JSON.")
console = entry_console()


def write_json(path: Path | None, result: dict[str, object]) -> None:
    data = orjson.dumps(result, option=orjson.OPT_INDENT_2)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data + b"\n")
    console.print_json(data.decode())


@app.command()
def transport(
    record_bytes: int = typer.Option(1000, help="size of each record"),
    records: int = typer.Option(None, help="records per round (default: ~400 MB or 200k)"),
    rounds: int = typer.Option(3, min=1),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
) -> None:
    """Our producer vs Kafka's ProducerPerformance on the same broker and settings."""
    from streamsense.services.bench import transport as bench

    settings = settings_from(StreamsenseSettings, service_name="bench-transport")
    result = bench.run(settings, record_bytes, records, rounds, progress=console.log)
    write_json(json_path, result)


@app.command("models")
def models_bench(
    model: list[str] = typer.Option(None, "--model", help="only these zoo models (repeatable)"),
    runs: int = typer.Option(5, min=1, help="runs per batch size; medians are reported"),
    min_seconds: float = typer.Option(0.25, min=0.01, help="shortest run per batch size"),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
) -> None:
    """Every zoo model bare (no Kafka): the adapter's predict_batch at batch 1, 2, 4, ...
    (pre-processing, model and post-processing), items/s and batch-1 latency."""
    from streamsense.models.bench import run_models_bench
    from streamsense.models.exceptions import ModelError

    settings = settings_from(StreamsenseSettings, service_name="bench-models")
    try:
        result = run_models_bench(
            settings.model_store_dir, models=model or None, runs=runs, min_seconds=min_seconds
        )
    except ModelError as exc:
        raise fail(str(exc)) from exc
    write_json(json_path, result)


@app.command()
def pipeline(
    task: str = typer.Option(..., help="detect | segment | sentiment"),
    seconds: float = typer.Option(10.0, min=1.0, help="length of the bare and latency runs"),
    model: str = typer.Option(None, help="NAME[@VERSION]; default: the task's zoo model"),
    max_batch: int = typer.Option(None, help="default: the model's best measured batch"),
    delivery: str = typer.Option(
        None,
        help="exactly-once | at-least-once (default: STREAMSENSE_DELIVERY), or both: what "
        "exactly-once costs (throughput and p99 of each, alternating rounds)",
    ),
    messages: int = typer.Option(
        None,
        min=50,
        help="--delivery both: backlog per round (default: 120000 lines, 300 frames: several "
        "seconds each, so start and drain do not weigh on the ratio)",
    ),
    rate: float = typer.Option(200.0, min=1.0, help="--delivery both: latency load, msg/s"),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
) -> None:
    """Bare worker vs Kafka -> worker -> results, latency at half load, batching speed-up;
    with --delivery both, exactly-once against at-least-once."""
    from streamsense.services.bench import pipeline as bench
    from streamsense.services.workers.settings import WorkerSettings

    options = {
        "task": ("--task", task),
        "worker_model": ("--model", model),
        "worker_max_batch": ("--max-batch", max_batch),
        "delivery": ("--delivery", None if delivery == "both" else delivery),
    }
    settings = settings_from(WorkerSettings, options, service_name=f"bench-{task}")
    if delivery == "both":
        from streamsense.services.bench import delivery as compare

        backlog = messages or (120_000 if settings.task == "sentiment" else 300)
        result = compare.run(settings, backlog, rate, seconds, progress=console.log)
    else:
        result = bench.run(settings, seconds, progress=console.log)
    write_json(json_path, result)


@app.command("produce-camera")
def produce_camera(
    frames: int = typer.Option(1500, min=10, help="frames per round and path (~5 s)"),
    rounds: int = typer.Option(5, min=1),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
) -> None:
    """Camera producer (read+resize+JPEG q80+Kafka) vs the same OpenCV loop without Kafka."""
    from streamsense.services.bench import produce_camera as bench
    from streamsense.services.producers.settings import CameraProducerSettings

    settings = settings_from(CameraProducerSettings, service_name="bench-produce-camera")
    result = bench.run(settings, frames, rounds, progress=console.log)
    write_json(json_path, result)


@app.command()
def cameras(
    cameras: int = typer.Option(16, min=1, max=256, help="cameras in the one process"),
    fps: float = typer.Option(5.0, min=0.1, help="frames per second per camera"),
    seconds: float = typer.Option(60.0, min=5.0, help="measured window after the warm-up"),
    width: int = typer.Option(640, min=16, help="frames resized to this width"),
    encoders: int = typer.Option(None, min=1, help="encoder threads (default: the setting, 2)"),
    source: str = typer.Option(None, help="a stream URL for every camera (default: the sample)"),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
) -> None:
    """`produce cameras` at scale: frames delivered per camera against the target, and CPU."""
    from streamsense.services.bench import cameras as bench
    from streamsense.services.producers.settings import CameraProducerSettings

    settings = settings_from(CameraProducerSettings, service_name="bench-cameras")
    if encoders is not None:
        settings = settings.model_copy(update={"camera_encoders": encoders})
    result = bench.run(settings, cameras, fps, seconds, width, source, progress=console.log)
    write_json(json_path, result)


@app.command()
def fanout(
    clients: int = typer.Option(50, min=1, help="concurrent WebSocket clients"),
    messages: int = typer.Option(1000, min=1, help="results to measure (after 20 warm-up)"),
    rate: float = typer.Option(100.0, min=1.0, help="results per second"),
    idle_clients: int = typer.Option(
        0,
        "--idle-clients",
        min=0,
        help="measure again with this many clients connected that never read; then 30 "
        "oversized messages (gateway memory)",
    ),
    rounds: int = typer.Option(
        3, min=1, help="with --idle-clients: rounds of without/with, alternating"
    ),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
) -> None:
    """Kafka ack -> sink -> Redis pub/sub -> gateway -> WebSocket latency, p50/p99."""
    from streamsense.services.bench import fanout as bench

    settings = settings_from(StreamsenseSettings, service_name="bench-fanout")
    result = bench.run(
        settings, clients, messages, rate, idle_clients, rounds, progress=console.log
    )
    write_json(json_path, result)


@app.command()
def learning(
    before: int = typer.Option(400, min=0, help="labels from the champion's domain first"),
    after: int = typer.Option(2400, min=200, help="then labels from the drifted domain"),
    label_rate: float = typer.Option(300.0, min=1.0, help="labels per second"),
    text_rate: float = typer.Option(200.0, min=1.0, help="texts per second to the worker"),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
) -> None:
    """Online learning on a drifted stream: static vs online accuracy, label-to-live time,
    swap gap of the worker's hot swap."""
    from streamsense.services.bench import learning as bench

    settings = settings_from(StreamsenseSettings, service_name="bench-learning")
    result = bench.run(
        settings,
        settings.home / "downloads",
        before=before,
        after=after,
        label_rate=label_rate,
        text_rate=text_rate,
        progress=console.log,
    )
    write_json(json_path, result)


@app.command()
def analytics(
    events: int = typer.Option(50_000, min=100, help="results produced before the app starts"),
    sources: int = typer.Option(20, min=1, help="cameras and text sources (each)"),
    interval_ms: int = typer.Option(100, min=1, help="event-time spacing per source"),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
) -> None:
    """Events/s through the Faust analytics app, and its recovery time after kill -9."""
    from streamsense.services.bench import analytics as bench

    settings = settings_from(StreamsenseSettings, service_name="bench-analytics")
    result = bench.run(
        settings, events, sources, progress=console.log, interval_ms=interval_ms,
        extra_env={"STREAMSENSE_KAFKA_GROUP_INSTANCE_ID": "bench-analytics-0"},
    )  # fmt: skip
    write_json(json_path, result)


@app.command()
def soak(
    minutes: float = typer.Option(10.0, min=0.5, help="length of the run"),
    fps: float = typer.Option(5.0, min=0.1, help="camera frames per second"),
    lines_per_s: float = typer.Option(50.0, min=0.1, help="log lines per second"),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
    png_path: Path = typer.Option(None, "--png", help="plot RSS, lag and results/s here"),
) -> None:
    """Camera + text through every service for MINUTES: RSS growth, lag, p99 latency."""
    from streamsense.services.bench import soak as bench

    settings = settings_from(StreamsenseSettings, service_name="bench-soak")
    result = bench.run(
        settings, minutes * 60, fps=fps, lines_per_s=lines_per_s, png=png_path,
        progress=console.log,
    )  # fmt: skip
    write_json(json_path, result)


@app.command()
def hostile(
    minutes: float = typer.Option(2.0, min=0.25, help="length of each phase (clean, poisoned)"),
    rate: float = typer.Option(200.0, min=1, help="records per second (frames and text lines)"),
    poison_pct: float = typer.Option(1.0, min=0.01, max=50, help="hostile records, percent"),
    frame_share: float = typer.Option(0.1, min=0.0, max=1.0, help="share of frames in the load"),
    warmup_s: float = typer.Option(60.0, min=0, help="clean load before measuring"),
    only: str = typer.Option(
        None, "--only", help="comma-separated hostile classes to send (default: all, in turn)"
    ),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
) -> None:
    """Workers and sink under a stream with 1% hostile records vs a clean one: restarts, RSS."""
    from streamsense.services.bench import hostile as bench

    settings = settings_from(StreamsenseSettings, service_name="bench-hostile")
    try:
        result = bench.run(
            settings, minutes * 60, rate=rate, poison_pct=poison_pct, frame_share=frame_share,
            warmup_s=warmup_s, only=only.split(",") if only else None, progress=console.log,
        )  # fmt: skip
    except ValueError as exc:
        msg = f"--only: {exc}"
        raise fail(msg, 2) from exc
    write_json(json_path, result)


def _task(task: str) -> Task:
    if task not in TASK_NAMES:
        msg = f"--task: {task!r} is not one of {', '.join(TASK_NAMES)}"
        raise fail(msg, EXIT_USAGE)
    return task


@app.command()
def latency(
    task: str = typer.Option(..., help="detect | segment | sentiment"),
    rates: str = typer.Option(..., help="offered rates, comma-separated, e.g. 20,200,2000"),
    seconds: float = typer.Option(15.0, min=2.0, help="length of each rate's run"),
    sources: int = typer.Option(4, min=1, help="cameras or log sources the load is spread over"),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
    png_path: Path = typer.Option(None, "--png", help="plot latency against throughput here"),
) -> None:
    """End-to-end p50/p90/p99 (capture -> worker -> sink -> Redis) and achieved throughput at
    each offered rate, like Triton's perf_analyzer."""
    from streamsense.services.bench import latency as bench

    try:
        points = [float(x) for x in rates.split(",") if x.strip()]
    except ValueError as exc:
        msg = f"--rates: {rates!r} is not a comma-separated list of numbers"
        raise fail(msg, EXIT_USAGE) from exc
    settings = settings_from(StreamsenseSettings, service_name="bench-latency")
    work = settings.home / "bench" / "latency"
    result = bench.run(settings, _task(task), points, seconds, work, png_path, sources,
                       progress=console.log)  # fmt: skip
    write_json(json_path, result)


@app.command()
def overload(
    task: str = typer.Option("detect", help="detect | segment"),
    cameras: int = typer.Option(4, min=1, help="cameras in the fleet"),
    fps: float = typer.Option(None, min=0.1, help="frames per second of each camera"),
    times: float = typer.Option(
        2.0, min=0.1, help="without --fps: offer this multiple of the measured capacity"
    ),
    seconds: float = typer.Option(30.0, min=5.0, help="length of the run"),
    json_path: Path = typer.Option(None, "--json", help="write the result here"),
) -> None:
    """A camera fleet faster than the worker: per-camera result rate, p50/p99 and skips, the
    offered load as a multiple of the worker's measured capacity."""
    from streamsense.services.bench import overload as bench

    if _task(task) == "sentiment":
        msg = "--task: overload is about cameras: detect or segment"
        raise fail(msg, EXIT_USAGE)
    settings = settings_from(StreamsenseSettings, service_name="bench-overload")
    work = settings.home / "bench" / "overload"
    result = bench.run(settings, _task(task), cameras, fps, seconds, work, console.log, times)
    write_json(json_path, result)
