"""``/ws/live``: results as they arrive, and ``POST /api/live/ticket`` for browsers."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from streamsense.schemas.catalog import Task
from streamsense.schemas.fields import MAX_ID_CHARS, SAFE_TEXT_PATTERN
from streamsense.services.gateway.auth import Tickets, websocket_allowed
from streamsense.services.gateway.live import LiveHub
from streamsense.services.gateway.security import origin_allowed
from streamsense.services.gateway.wsconn import EXTENSION

log = logging.getLogger(__name__)

#: Seconds a client refused for the client limit is asked to wait.
RETRY_AFTER_S = 5

router = APIRouter()
tickets = APIRouter(prefix="/api", tags=["live"])

SourceFilter = Annotated[
    str | None, Query(min_length=1, max_length=MAX_ID_CHARS, pattern=SAFE_TEXT_PATTERN)
]


class Ticket(BaseModel):
    ticket: str = Field(description="pass as /ws/live?ticket=...; valid once")
    expires_in_s: float


@tickets.post("/live/ticket", response_model=Ticket)
async def ticket(request: Request) -> Ticket:
    """A single-use ticket for one ``/ws/live`` handshake, for clients that cannot send the
    bearer header with it (browsers)."""
    book: Tickets = request.app.state.tickets
    return Ticket(ticket=book.issue(), expires_in_s=book.ttl_s)


@router.websocket("/ws/live")
async def live(ws: WebSocket, task: Task | None = None, source: SourceFilter = None) -> None:
    """Results as they arrive, as ``{"type": "result", "task", "source", "result"}`` texts;
    the first message is ``{"type": "hello"}`` once the client is subscribed, and
    ``{"type": "status", "redis": bool}`` follows whenever Redis goes away or comes back."""
    settings = ws.app.state.settings
    if not origin_allowed(ws.headers, settings):
        await ws.close(code=1008, reason="origin not allowed")
        return
    if not websocket_allowed(ws):
        await ws.close(code=1008, reason="missing or wrong token or ticket")
        return
    conn = ws.scope.get("extensions", {}).get(EXTENSION)
    if conn is None:
        log.error("/ws/live needs the gateway's own uvicorn setup (server.uvicorn_config)")
        await ws.close(code=1011)
        return
    hub: LiveHub = ws.app.state.hub
    state = ws.app.state
    limit = settings.gateway_max_live_clients
    if state.live_admitted >= limit:  # counted from admission: handshakes in flight count too
        refusal = {"error": f"too many live clients ({limit}); try again later"}
        headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
        await ws.send_denial_response(JSONResponse(refusal, status_code=503, headers=headers))
        return
    state.live_admitted += 1
    try:
        await _serve(ws, hub, conn, task, source)
    finally:
        state.live_admitted -= 1


async def _serve(
    ws: WebSocket, hub: LiveHub, conn: Any, task: str | None, source: str | None
) -> None:
    settings = ws.app.state.settings
    await ws.accept()
    hello = {
        "type": "hello",
        "task": task,
        "source": source,
        "queue": hub.queue_size,
        "redis": hub.connected,
        "server_ms": time.time_ns() // 10**6,
        "stale_after_s": settings.gateway_stale_after_s,
    }
    await ws.send_text(orjson.dumps(hello).decode())
    client = hub.register(task, source, conn)
    try:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass  # clients have nothing to say; their messages are bounded and dropped
    finally:
        hub.unregister(client)
