"""``streamsense gateway``: REST + WebSocket + dashboard over the Redis serving layer."""

from __future__ import annotations

import typer

app = typer.Typer(help="Serve results from Redis: REST, WebSocket /ws/live and the dashboard.")


@app.callback(invoke_without_command=True)
def gateway(
    host: str = typer.Option(
        None,
        help="bind address (default STREAMSENSE_GATEWAY_HOST or "
        "127.0.0.1; anything but loopback needs a token)",
    ),
    port: int = typer.Option(None, help="port (default STREAMSENSE_GATEWAY_PORT or 8000)"),
) -> None:
    """Serve until SIGTERM/SIGINT. Token: STREAMSENSE_GATEWAY_TOKEN."""
    from streamsense.services.exceptions import ConfigError
    from streamsense.services.gateway.server import serve
    from streamsense.services.gateway.settings import GatewaySettings

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["gateway_host"] = host
    if port is not None:
        overrides["gateway_port"] = port
    try:
        settings = GatewaySettings(**overrides)  # type: ignore[arg-type]
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    serve(settings)
