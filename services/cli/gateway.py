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
    from streamsense.services.cli.entry import run_service, settings_from
    from streamsense.services.gateway.server import GatewayService
    from streamsense.services.gateway.settings import GatewaySettings

    options = {"gateway_host": ("--host", host), "gateway_port": ("--port", port)}
    run_service(settings_from(GatewaySettings, options), GatewayService)
