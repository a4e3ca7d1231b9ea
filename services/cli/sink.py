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
    from streamsense.services.sink.service import RedisSink
    from streamsense.services.sink.settings import SinkSettings

    overrides: dict[str, object] = {}
    if prefix is not None:
        overrides["redis_prefix"] = prefix
    if thumbnails is not None:
        overrides["sink_thumbnails"] = thumbnails
    settings = SinkSettings(**overrides)  # type: ignore[arg-type]
    raise typer.Exit(RedisSink(settings).serve())
