"""``streamsense produce camera | cameras | text``: push camera frames or text lines into Kafka.

Exit codes: 0 done (source ended, ``--max-frames`` reached, or stopped by SIGTERM/SIGINT after
flushing); 1 Kafka problem (unreachable or silent for ``--kafka-timeout`` seconds, topic missing,
records refused: the message counts what was not acknowledged); 2 bad options, an invalid fleet
file, an unreadable or damaged source (a video file with frames that cannot be decoded: the
others were sent), or a text checkpoint that is invalid, in use by another producer or cannot be
written; 3 a live source was lost and did not come back (a fleet: every camera ended and at
least one ended on an error).
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from streamsense.schemas.fields import source_id_problem
from streamsense.services.cli.entry import console as entry_console
from streamsense.services.cli.entry import fail, settings_from
from streamsense.services.exceptions import ServiceError
from streamsense.services.kafka.exceptions import KafkaIOError
from streamsense.services.producers.exceptions import (
    CheckpointError,
    FleetConfigError,
    KafkaUnavailableError,
    SourceError,
    SourceLostError,
    TopicMissingError,
)
from streamsense.services.producers.settings import CameraProducerSettings, TextProducerSettings
from streamsense.services.settings import StreamsenseSettings

if TYPE_CHECKING:
    from streamsense.services.kafka.producer import Producer
    from streamsense.services.producers.kafka_watch import KafkaWatch

app = typer.Typer(help="Producers: camera frames and text lines into Kafka.", no_args_is_help=True)
console = entry_console(stderr=True)
log = logging.getLogger(__name__)

S = TypeVar("S", bound=StreamsenseSettings)


def _fail(code: int, message: str) -> typer.Exit:
    return fail(message, code)


_KAFKA_TIMEOUT = typer.Option(
    None,
    "--kafka-timeout",
    help="seconds Kafka may stay unreachable or silent before exit 1 (default 15)",
)


def _camera_source(given: str | None, settings: CameraProducerSettings) -> str:
    """``--source``, or STREAMSENSE_CAMERA_SOURCE (never both: which one counts would be a
    guess); a password on the command line is used, with a warning."""
    from streamsense.services.producers.redact import redact_url

    stored = settings.camera_source.get_secret_value() if settings.camera_source else None
    if given is not None and stored is not None:
        raise _fail(2, "give the camera's source once: --source or STREAMSENSE_CAMERA_SOURCE")
    if given is None and not stored:
        raise _fail(2, "no source: give --source, or STREAMSENSE_CAMERA_SOURCE for a URL with a "
                       "password")  # fmt: skip
    if given is not None and redact_url(given) != given:
        log.warning("the --source URL holds a password or a token, which every user of this "
                    "machine reads in `ps`: give it in STREAMSENSE_CAMERA_SOURCE")  # fmt: skip
    return given if given is not None else str(stored)


@app.command()
def camera(
    source: str = typer.Option(
        None,
        "--source",
        help="video file, rtsp/http URL, device index, image folder or quoted "
        "glob (a URL with a password: STREAMSENSE_CAMERA_SOURCE, out of `ps`)",
    ),  # fmt: skip
    camera_id: str = typer.Option(..., "--camera-id", help="Kafka key and frame header"),
    fps: float = typer.Option(None, help="target rate (default: the source's own)"),
    width: int = typer.Option(None, help="resize to this width, aspect kept"),
    jpeg_quality: int = typer.Option(None, "--jpeg-quality", help="1-100 (default 80)"),
    loop: bool = typer.Option(None, "--loop/--no-loop", help="start a file/folder over at its end"),
    max_frames: int = typer.Option(None, "--max-frames", help="stop after N frames"),
    topic: str = typer.Option(None, help="logical topic (default frames; prefix is added)"),
    kafka_timeout: float = _KAFKA_TIMEOUT,
) -> None:
    """Read frames with OpenCV, JPEG-encode them and produce to `frames` (newest frame wins)."""
    from streamsense.services.observability.health import HealthServer
    from streamsense.services.producers.camera import CameraProducer
    from streamsense.services.producers.live import LiveProgress
    from streamsense.services.producers.sources import open_source
    from streamsense.services.runner import start_health, stop_on_signals

    settings = settings_from(CameraProducerSettings, {
        "camera_fps": ("--fps", fps),
        "camera_width": ("--width", width),
        "camera_jpeg_quality": ("--jpeg-quality", jpeg_quality),
        "camera_loop": ("--loop", loop),
        "camera_max_frames": ("--max-frames", max_frames),
        "camera_topic": ("--topic", topic),
        "camera_kafka_timeout_s": ("--kafka-timeout", kafka_timeout),
    })  # fmt: skip
    if why := source_id_problem(camera_id):
        raise _fail(2, f"--camera-id {why}")
    source = _camera_source(source, settings)
    settings.apply_ffmpeg_options()
    try:
        frames = open_source(source, open_timeout_s=settings.camera_open_timeout_s,
                             read_timeout_s=settings.camera_read_timeout_s,
                             decode_threads=settings.camera_decode_threads)  # fmt: skip
        frames.open()  # fail fast on an unreadable source, before touching Kafka
    except SourceError as exc:
        raise _fail(2, str(exc)) from exc
    stop = threading.Event()
    cam = CameraProducer(settings, frames, camera_id, stop=stop)
    producer = cam.producer
    health: HealthServer | None = None
    try:
        _check_topics(cam.watch, producer, settings)
        health = start_health(settings, cam.health)
        title = f"camera {camera_id} -> {settings.topic_name}"
        rates = {"fps": ("sent", 1.0), "MB/s": ("bytes", 1e-6)}
        with stop_on_signals(stop.set), LiveProgress(title, cam.snapshot, rates, console,
                                                 hidden=frozenset({"bytes"})):  # fmt: skip
            cam.run()
    except SourceLostError as exc:
        raise _fail(3, str(exc)) from exc
    except SourceError as exc:
        raise _fail(2, str(exc)) from exc
    except (KafkaIOError, KafkaUnavailableError, TopicMissingError) as exc:
        raise _fail(1, str(exc)) from exc
    finally:
        frames.close()
        if health is not None:
            health.stop()
    if cam.stats.failed:
        raise _fail(1, f"Kafka refused {cam.stats.failed} frames")


def _check_topics(watch: KafkaWatch, producer: Producer, settings: CameraProducerSettings) -> None:
    """Kafka answers and has the frames topic and, unless disabled, the statuses topic."""
    watch.check_topic(producer, settings.topic_name)
    if settings.status_topic_name is not None:
        watch.check_topic(producer, settings.status_topic_name)


@app.command()
def cameras(
    config: Path = typer.Option(
        ..., "--config", help="the fleet file (YAML): cameras and defaults"
    ),
    encoders: int = typer.Option(None, "--encoders", help="encoder threads shared by the cameras"),
    check: bool = typer.Option(False, "--check", help="validate the file, print the cameras, exit"),
    topic: str = typer.Option(None, help="logical topic (default frames; prefix is added)"),
    kafka_timeout: float = _KAFKA_TIMEOUT,
) -> None:
    """Run every camera of a fleet file in this process; each camera's state goes to
    `cameras.status`."""
    from streamsense.services.observability.health import HealthServer
    from streamsense.services.producers.fleet import CameraFleet
    from streamsense.services.producers.fleet_config import load_fleet
    from streamsense.services.producers.live import LiveProgress
    from streamsense.services.producers.sources import redact_url
    from streamsense.services.runner import start_health, stop_on_signals

    settings = settings_from(CameraProducerSettings, {
        "camera_encoders": ("--encoders", encoders),
        "camera_topic": ("--topic", topic),
        "camera_kafka_timeout_s": ("--kafka-timeout", kafka_timeout),
    })  # fmt: skip
    try:
        specs = load_fleet(config, settings)
    except FleetConfigError as exc:
        raise _fail(2, str(exc)) from exc
    if check:
        for s in specs:
            rate = f"{s.fps:g} fps" if s.fps else "own pace"
            console.print(f"{s.camera_id}: {redact_url(s.source)} at {rate}, width "
                          f"{s.width or 'as read'}, quality {s.jpeg_quality}")  # fmt: skip
        console.print(f"{len(specs)} camera(s): {config} is valid")
        return
    settings.apply_ffmpeg_options()
    stop = threading.Event()
    try:
        fleet = CameraFleet(settings, specs, stop=stop)
    except SourceError as exc:  # a file that went away since the check
        raise _fail(2, str(exc)) from exc
    for cam in fleet.cameras:  # files and folders must be readable now; streams may come later
        if not cam.source.live:
            try:
                cam.source.open()
            except SourceError as exc:
                raise _fail(2, f"camera {cam.camera_id!r}: {exc}") from exc
    health: HealthServer | None = None
    try:
        _check_topics(fleet.watch, fleet.producer, settings)
        health = start_health(settings, fleet.health)
        title = f"{len(specs)} cameras -> {settings.topic_name}"
        rates = {"fps": ("sent", 1.0), "MB/s": ("bytes", 1e-6)}
        with stop_on_signals(stop.set), LiveProgress(title, fleet.snapshot, rates, console,
                                                 hidden=frozenset({"bytes"})):  # fmt: skip
            fleet.run()
    except (KafkaIOError, KafkaUnavailableError, TopicMissingError) as exc:
        raise _fail(1, str(exc)) from exc
    finally:
        for cam in fleet.cameras:
            cam.source.close()
        if health is not None:
            health.stop()
    failed = sum(c.stats.failed for c in fleet.cameras)
    if failed:
        raise _fail(1, f"Kafka refused {failed} frames")
    lost = fleet.lost()
    if lost and not fleet.stop_requested:
        names = ", ".join(f"{c.camera_id} ({c.error})" for c in lost)
        raise _fail(3, f"every camera ended; ended on an error: {names}")


@app.command()
def text(
    path: str = typer.Option(None, "--path", help="file or quoted glob, e.g. 'logs/*.log'"),
    stdin: bool = typer.Option(False, "--stdin", help="read lines from standard input"),
    follow: bool = typer.Option(False, "--follow", "-F", help="keep following (tail -F)"),
    json_field: str = typer.Option(
        None,
        "--json-field",
        help="lines are JSON; text is this (dotted) field; other lines go to <topic>.dlq",
    ),  # fmt: skip
    source_id: str = typer.Option(None, "--source-id", help="default: the file name (stdin)"),
    checkpoint: Path = typer.Option(None, help="positions file (default under STREAMSENSE_HOME)"),
    max_line_bytes: int = typer.Option(
        None, "--max-line-bytes", help="longer lines are truncated and flagged (default 65536)"
    ),  # fmt: skip
    topic: str = typer.Option(None, help="logical topic (default text; prefix is added)"),
    kafka_timeout: float = _KAFKA_TIMEOUT,
) -> None:
    """Follow log files (several, rotated, truncated) or stdin; one TextEvent per line."""
    from streamsense.schemas.catalog import dlq_topic
    from streamsense.services.observability.health import HealthServer
    from streamsense.services.producers.live import LiveProgress
    from streamsense.services.producers.tail import matching_files, not_regular
    from streamsense.services.producers.text import TextProducer
    from streamsense.services.runner import start_health, stop_on_signals

    if (path is None) == (not stdin):
        raise _fail(2, "give exactly one of --path GLOB and --stdin")
    if source_id is not None and (why := source_id_problem(source_id)):
        raise _fail(2, f"--source-id {why}")
    settings = settings_from(TextProducerSettings, {
        "text_checkpoint": ("--checkpoint", checkpoint),
        "text_max_line_bytes": ("--max-line-bytes", max_line_bytes),
        "text_topic": ("--topic", topic),
        "text_kafka_timeout_s": ("--kafka-timeout", kafka_timeout),
    })  # fmt: skip
    if path is not None and not follow and not matching_files(path):
        raise _fail(2, f"no file matches {path}{not_regular(path)}")
    # watchfiles reports every batch of changes at INFO: far too chatty for a log follower
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    stop = threading.Event()
    producer = TextProducer(settings, pattern=path, stdin=sys.stdin.buffer if stdin else None,
                            follow=follow, json_field=json_field, source_id=source_id,
                            stop=stop)  # fmt: skip
    health: HealthServer | None = None
    try:
        try:
            producer.watch.check_topic(producer.producer, settings.topic_name)
            if json_field is not None:  # lines without the field go to the dead-letter topic
                producer.watch.check_topic(producer.producer, dlq_topic(settings.topic_name))
        except ServiceError as exc:
            raise _fail(1, f"{exc}; no line was read") from exc
        health = start_health(settings, producer.health)
        title = f"text {path or 'stdin'} -> {settings.topic_name}"
        with stop_on_signals(stop.set), LiveProgress(title, producer.snapshot,
                                                 {"lines/s": ("sent", 1.0)}, console):  # fmt: skip
            producer.run()
    except (SourceError, CheckpointError) as exc:
        raise _fail(2, str(exc)) from exc
    except ServiceError as exc:
        raise _fail(1, str(exc)) from exc
    finally:
        if health is not None:
            health.stop()
