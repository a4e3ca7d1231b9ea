"""``streamsense sink redis``: results and thumbnails from Kafka into Redis."""

from __future__ import annotations

import typer

app = typer.Typer(help="Sinks that serve results from Kafka to other systems.")


@app.command()
def redis(
    prefix: str = typer.Option(None, help="Redis key prefix (default: STREAMSENSE_REDIS_PREFIX)"),
    thumbnails: bool = typer.Option(
        None, "--thumbnails/--no-thumbnails", help="consume frames for camera thumbnails"
    ),
) -> None:
    """Consume results.* (and frames) and write the Redis serving layer; SIGTERM drains."""
    from streamsense.services.cli.entry import run_service, settings_from
    from streamsense.services.sink.service import RedisSink
    from streamsense.services.sink.settings import SinkSettings

    options = {
        "redis_prefix": ("--prefix", prefix),
        "sink_thumbnails": ("--thumbnails", thumbnails),
    }
    run_service(settings_from(SinkSettings, options), RedisSink)


@app.command()
def rebuild(
    since: str = typer.Option(
        None, "--since", help="replay results this recent, e.g. 15m, 2h, 1d (default: all kept)"
    ),
    prefix: str = typer.Option(None, help="Redis key prefix (default: STREAMSENSE_REDIS_PREFIX)"),
) -> None:
    """Replay the results topics into Redis (latest results, history streams, source sets):
    a Redis lost entirely is restored from Kafka. Stop the sink first; start it afterwards."""
    import redis as redis_py
    from rich.table import Table

    from streamsense.services.cli.entry import EXIT_USAGE, fail, settings_from
    from streamsense.services.cli.entry import console as entry_console
    from streamsense.services.exceptions import ServiceError
    from streamsense.services.sink.rebuild import Rebuild, parse_duration
    from streamsense.services.sink.settings import SinkSettings

    try:
        since_s = parse_duration(since) if since is not None else None
    except ValueError as exc:
        msg = f"--since: {exc}"
        raise fail(msg, EXIT_USAGE) from exc
    settings = settings_from(SinkSettings, {"redis_prefix": ("--prefix", prefix)})
    console = entry_console(stderr=True)  # progress lines hold topic names: no markup
    try:
        result = Rebuild(settings, since_s).run(progress=console.log)
    except ServiceError as exc:
        raise fail(str(exc)) from exc
    except redis_py.RedisError as exc:
        msg = f"Redis: {type(exc).__name__}: {exc}"
        raise fail(msg) from exc
    table = Table("task", "results", "sources", "invalid (skipped)")
    for task, c in result["tasks"].items():
        table.add_row(task, str(c["results"]), str(c["sources"]), str(c["invalid"]))
    entry_console().print(table)
    console.log(f"rebuilt under prefix {settings.redis_prefix!r} in {result['seconds']} s")
