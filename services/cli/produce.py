"""``streamsense produce camera | text``: push camera frames or text lines into Kafka.

Exit codes: 0 done (source ended, ``--max-frames`` reached, or stopped by SIGTERM/SIGINT after
flushing); 1 Kafka problem (unreachable or silent for ``--kafka-timeout`` seconds, topic missing,
records refused: the message counts what was not acknowledged); 2 bad options or an unreadable
source; 3 a live source was lost and did not come back.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import TypeVar

import typer

from streamsense.schemas.fields import source_id_problem
from streamsense.services.cli.entry import console as entry_console
from streamsense.services.cli.entry import fail, settings_from
from streamsense.services.exceptions import ServiceError
from streamsense.services.kafka.exceptions import KafkaIOError
from streamsense.services.producers.exceptions import (
    KafkaUnavailableError,
    SourceError,
    SourceLostError,
    TopicMissingError,
)
from streamsense.services.producers.settings import CameraProducerSettings, TextProducerSettings
from streamsense.services.settings import StreamsenseSettings

app = typer.Typer(help="Producers: camera frames and text lines into Kafka.", no_args_is_help=True)
console = entry_console(stderr=True)

S = TypeVar("S", bound=StreamsenseSettings)


def _fail(code: int, message: str) -> typer.Exit:
    return fail(message, code)


_KAFKA_TIMEOUT = typer.Option(
    None,
    "--kafka-timeout",
    help="seconds Kafka may stay unreachable or silent before exit 1 (default 15)",
)


@app.command()
def camera(
    source: str = typer.Option(
        ..., "--source", help="video file, rtsp/http URL, device index, image folder or quoted glob"
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
    try:
        frames = open_source(source)
        frames.open()  # fail fast on an unreadable source, before touching Kafka
    except SourceError as exc:
        raise _fail(2, str(exc)) from exc
    stop = threading.Event()
    cam = CameraProducer(settings, frames, camera_id, stop=stop)
    producer = cam.producer
    health: HealthServer | None = None
    try:
        cam.watch.check_topic(producer, settings.topic_name)
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
    if producer.failed:
        raise _fail(1, f"Kafka refused {producer.failed} frames")


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
    from streamsense.services.producers.tail import matching_files
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
        raise _fail(2, f"no file matches {path}")
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
    except SourceError as exc:
        raise _fail(2, str(exc)) from exc
    except ServiceError as exc:
        raise _fail(1, str(exc)) from exc
    finally:
        if health is not None:
            health.stop()
