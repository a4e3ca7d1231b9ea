"""The gateway's FastAPI application: REST, WebSocket fan-out, dashboard, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamsense.services.gateway import api, live
from streamsense.services.gateway.auth import require_token
from streamsense.services.gateway.live import LiveHub
from streamsense.services.gateway.responses import Health
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.clients import TRANSIENT, async_client
from streamsense.services.serving.keys import RedisKeys

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
VERSION = "1"


def create_app(settings: GatewaySettings) -> FastAPI:
    """A gateway app over the Redis at ``settings.redis_url`` with ``settings.redis_prefix``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        r = async_client(settings.redis_url.get_secret_value())
        hub = LiveHub(r, app.state.keys, settings.gateway_client_queue)
        app.state.redis, app.state.hub = r, hub
        task = asyncio.create_task(hub.run(), name="live-hub")
        if not await hub.wait_connected(5.0):
            log.warning("redis is not reachable yet; /healthz reports 503 until it is")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await r.aclose()

    app = FastAPI(
        title="streamsense gateway",
        version=VERSION,
        description="Results of the streamsense workers from the Redis serving layer: REST for "
        "history and the latest result, WebSocket `/ws/live` for results as they arrive.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keys = RedisKeys(settings.redis_prefix)
    if settings.gateway_token is not None:
        unauthorized: dict[int | str, dict[str, Any]] = {
            401: {"model": api.ErrorBody, "description": "missing or wrong token"}
        }
        app.include_router(
            api.router, dependencies=[Depends(require_token)], responses=unauthorized
        )
    else:
        app.include_router(api.router)
    app.include_router(live.router)
    app.add_api_route(
        "/healthz",
        healthz,
        methods=["GET"],
        response_model=Health,
        responses={503: {"model": Health}},
        tags=["ops"],
    )
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def healthz(request: Request, response: Response) -> Health:
    """200 when Redis answers and the live subscriber is connected, 503 otherwise."""
    hub: LiveHub = request.app.state.hub
    try:
        redis_ok = bool(await asyncio.wait_for(request.app.state.redis.ping(), 1.0))
    except (TimeoutError, *TRANSIENT):
        redis_ok = False
    ok = redis_ok and hub.connected
    response.status_code = 200 if ok else 503
    return Health(ok=ok, redis=redis_ok, live=hub.connected, live_clients=len(hub.clients))


async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
