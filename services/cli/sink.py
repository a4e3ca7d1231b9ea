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
    run_service(settings_from(SinkSettings, options), lambda s: RedisSink(s, check_topics=True))
