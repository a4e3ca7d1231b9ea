"""How the API fails: Redis away is a JSON 503 logged once per change, not a traceback per
request; a source id that cannot name a key is a 400 that says why; a ``/ws/live`` handshake
whose filter is invalid is a 422 that says why, like the same parameter on an HTTP route
(FastAPI's own answer, a close before the handshake, reached the client as a bare 403)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, WebSocket, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamsense.services.serving.exceptions import SourceIdError

log = logging.getLogger(__name__)

REDIS_DOWN = {"error": "redis unavailable"}
#: Seconds a client is asked to wait before it tries again.
RETRY_AFTER_S = 2


class Unavailable(BaseModel):
    error: str


class RedisState:
    """Whether the API's last Redis call worked; logs only when that changes."""

    def __init__(self) -> None:
        self.up = True

    def failed(self, exc: BaseException) -> None:
        if self.up:
            log.warning(
                "redis unavailable (%s: %s): /api answers 503 until it is back",
                type(exc).__name__,
                exc,
            )
        self.up = False

    def worked(self) -> None:
        if not self.up:
            log.info("redis is back: /api answers again")
        self.up = True


async def track_redis(request: Request) -> AsyncIterator[None]:
    """Router dependency: a route that returned normally has talked to Redis."""
    yield
    request.app.state.redis_state.worked()


async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
    request.app.state.redis_state.failed(exc)
    return JSONResponse(
        REDIS_DOWN,
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"},
    )


async def _internal(_request: Request, _exc: Exception) -> JSONResponse:
    """Anything unforeseen: JSON that says where to look, never a traceback (the log has it)."""
    return JSONResponse(
        {"error": "internal error in the gateway; its log has the details"},
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        headers={"Cache-Control": "no-store"},
    )


async def _bad_id(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_400_BAD_REQUEST)


async def _bad_handshake(ws: WebSocket, exc: Exception) -> None:
    errors = exc.errors() if isinstance(exc, WebSocketRequestValidationError) else []
    body = {"detail": jsonable_encoder(errors)}
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        answer = JSONResponse(body, status_code=422, headers={"Cache-Control": "no-store"})
        await ws.send_denial_response(answer)
        return
    # A server without denial responses: the close code and a reason that fits a close frame.
    where = ", ".join(".".join(map(str, e.get("loc", ()))) for e in errors)
    await ws.close(code=1008, reason=f"invalid parameter: {where}"[:120])


def install(app: FastAPI) -> None:
    app.state.redis_state = RedisState()
    # redis-py wraps socket errors (refused, reset, timed out) in these two.
    app.add_exception_handler(RedisConnectionError, _redis_down)
    app.add_exception_handler(RedisTimeoutError, _redis_down)
    app.add_exception_handler(SourceIdError, _bad_id)
    app.add_exception_handler(WebSocketRequestValidationError, _bad_handshake)
    app.add_exception_handler(Exception, _internal)  # runs in the outermost error handler
