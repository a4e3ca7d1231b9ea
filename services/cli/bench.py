"""``streamsense bench ...``: benchmarks that write JSON results."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from rich.console import Console

from services.settings import StreamsenseSettings

app = typer.Typer(help="Benchmarks; each writes its figures as JSON.")
console = Console()


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
    from services.bench import transport as bench

    settings = StreamsenseSettings(service_name="bench-transport")
    result = bench.run(settings, record_bytes, records, rounds, progress=console.log)
    write_json(json_path, result)
