"""How the API fails: Redis away is a JSON 503 logged once per change, not a traceback per
request; a source id that cannot name a key is a 400 that says why."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, status
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


async def _bad_id(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_400_BAD_REQUEST)


def install(app: FastAPI) -> None:
    app.state.redis_state = RedisState()
    # redis-py wraps socket errors (refused, reset, timed out) in these two.
    app.add_exception_handler(RedisConnectionError, _redis_down)
    app.add_exception_handler(RedisTimeoutError, _redis_down)
    app.add_exception_handler(SourceIdError, _bad_id)
