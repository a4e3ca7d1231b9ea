"""``HEAD`` answers as ``GET`` without a body, on every route that answers ``GET``.

FastAPI's routes accept only the methods they declare (Starlette's own routes add ``HEAD``,
FastAPI's do not), so ``curl -I``, uptime monitors and load balancers that probe with ``HEAD``
got 405 from ``/healthz``, ``/metrics``, ``/`` and the API. Here a ``HEAD`` request is routed as
``GET`` and its body is dropped: the status and headers (``Content-Length`` included) are those
of the ``GET``. A 405 lists ``HEAD`` wherever it lists ``GET``.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """Pure ASGI, so it routes ``HEAD`` the same way for every route and mount."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def send_head(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                headers = MutableHeaders(scope=message)
                allowed = [m.strip() for m in headers.get("allow", "").split(",") if m.strip()]
                if "GET" in allowed and "HEAD" not in allowed:
                    headers["Allow"] = ", ".join([*allowed, "HEAD"])
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}  # the server sends none for HEAD either
            await send(message)

        await self.app(scope, receive, send_head)
