"""The gateway's FastAPI application: REST, WebSocket fan-out, dashboard, health and metrics.

What is open and what needs the token (when one is set): ``/healthz`` and the static dashboard
(``/``, ``/static``) are open, they hold no data; everything else, ``/docs``, ``/openapi.json``
and ``/metrics`` included, needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.params import Depends as DependsParam
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamsense.services.gateway import api, errors, feedback, redact, security, urls, ws
from streamsense.services.gateway.auth import Tickets, require_token
from streamsense.services.gateway.cameras import CameraStatusReader
from streamsense.services.gateway.feedback import Producers
from streamsense.services.gateway.head import HeadAsGet
from streamsense.services.gateway.live import LiveHub
from streamsense.services.gateway.responses import Health
from streamsense.services.gateway.settings import GatewaySettings
from streamsense.services.serving.clients import TRANSIENT, async_client
from streamsense.services.serving.keys import RedisKeys

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
VERSION = "1"
#: An API call gives up on a Redis that accepted the connection but does not answer.
API_REDIS_TIMEOUT_S = 2.0


def create_app(settings: GatewaySettings) -> FastAPI:
    """A gateway app over the Redis at ``settings.redis_url`` with ``settings.redis_prefix``."""
    redact.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.redis_url.get_secret_value()
        r = async_client(url, read_timeout=API_REDIS_TIMEOUT_S, name="gateway-api")
        sub = async_client(url, name="gateway-live")  # pub/sub reads block: no read timeout
        hub = LiveHub(
            sub, app.state.keys, settings.gateway_client_queue, settings.gateway_slow_client_s
        )
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
            await sub.aclose()
            await asyncio.to_thread(app.state.producers.close)

    app = security.SecureApp(
        title="streamsense gateway",
        version=VERSION,
        description="Results of the streamsense workers from the Redis serving layer: REST for "
        "history and the latest result, WebSocket `/ws/live` for results as they arrive.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind the token
        responses={
            400: {"model": urls.UrlError, "description": "the URL is not percent-encoded UTF-8"}
        },
    )
    app.state.settings = settings
    app.state.keys = RedisKeys(settings.redis_prefix)
    app.state.tickets = Tickets(settings.gateway_ticket_ttl_s)
    app.state.live_admitted = 0  # /ws/live clients admitted and not gone (ws.py)
    app.state.producers = Producers()
    app.state.camera_statuses = CameraStatusReader(app.state.keys, settings.gateway_max_listed)
    # Innermost first: URLs are checked after the Host check and CORS (its errors readable
    # cross-origin), HEAD is routed as GET by all of them.
    app.add_middleware(urls.StrictUrls, router=app.router)
    security.install(app, settings)
    app.add_middleware(HeadAsGet)
    errors.install(app)

    guarded: list[DependsParam] = []
    unauthorized: dict[int | str, dict[str, Any]] = {}
    if settings.gateway_token is not None:
        guarded = [Depends(require_token)]
        unauthorized[401] = {"model": api.ErrorBody, "description": "missing or wrong token"}
    Responses = dict[int | str, dict[str, Any]]
    redis_down: Responses = {
        503: {"model": errors.Unavailable, "description": "Redis is unavailable"}
    }
    forbidden: Responses = {403: {"model": api.ErrorBody, "description": "cross-origin request"}}
    posting = [*guarded, Depends(security.require_same_origin)]
    app.include_router(
        api.router,
        dependencies=[*guarded, Depends(errors.track_redis)],
        responses={**unauthorized, **redis_down},
    )
    app.include_router(ws.tickets, dependencies=posting, responses={**unauthorized, **forbidden})
    app.include_router(
        feedback.router, dependencies=posting, responses={**unauthorized, **forbidden}
    )
    app.include_router(ws.router)
    app.add_api_route(
        "/healthz",
        healthz,
        methods=["GET"],
        response_model=Health,
        responses={503: {"model": Health}},
        tags=["ops"],
    )
    for path, endpoint in (("/metrics", metrics), ("/openapi.json", openapi), ("/docs", docs)):
        app.add_api_route(
            path, endpoint, methods=["GET"], include_in_schema=False, dependencies=guarded
        )
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


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


async def docs() -> FileResponse:
    """Swagger UI; its script is ours (``static/docs.js``), the UI comes from jsDelivr."""
    return FileResponse(STATIC / "docs.html", headers={"Cache-Control": "no-cache"})


async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
