"""``streamsense schemas export DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

from streamsense.schemas.export import export as export_schemas
from streamsense.services.cli.entry import console as entry_console

app = typer.Typer(help="Message contracts.")
console = entry_console()


@app.command()
def export(
    directory: Path = typer.Argument(..., help="where to write the JSON Schema files"),
) -> None:
    """Write one JSON Schema file per message contract."""
    for path in export_schemas(directory):
        console.print(str(path))
