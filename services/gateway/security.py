"""What keeps the gateway safe to open in a browser: response headers (one middleware), the
Host allowlist, the Origin check for WebSockets and state-changing requests, and CORS only when
configured.

DNS rebinding makes a hostile page's own name resolve to this machine, so its requests carry a
foreign Host: the allowlist refuses them. A cross-site WebSocket or POST carries the foreign
page's Origin: it must be this server's own origin (the Host it was reached by, which passed the
allowlist) or one configured in ``STREAMSENSE_GATEWAY_ALLOWED_ORIGINS``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request, status
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamsense.services.gateway.settings import GatewaySettings

#: The dashboard and every API response: scripts and connections only from this origin, no
#: inline script or style, nothing may frame the page, no form posts anywhere.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: /docs loads Swagger UI from jsDelivr (as FastAPI's own page does); its script is ours.
SWAGGER_CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = (
    f"default-src 'none'; script-src 'self' {SWAGGER_CDN}; "
    f"style-src 'self' 'unsafe-inline' {SWAGGER_CDN}; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


#: Answers that hold data (results, ids, metrics, errors that name them), unless the route says
#: otherwise: no browser or proxy keeps a copy (without it they were heuristically cacheable).
DATA_CACHE = "no-store"
#: The dashboard's files: kept, but revalidated (an ETag, so a 304) on every use, so an
#: upgraded gateway never runs with a stale script beside a new page.
FILES_CACHE = "no-cache"


class SecurityHeaders:
    """Sets the security headers on every HTTP response, refusals of WebSocket handshakes
    included (pure ASGI, so streaming responses and WebSockets pass untouched), and
    ``Cache-Control`` where the response has none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = DOCS_CSP if path == "/docs" else CSP
        cache = FILES_CACHE if path.startswith("/static/") else DATA_CACHE

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = csp
                for name, value in HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = cache
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SecureApp(FastAPI):
    """The gateway's app: :class:`SecurityHeaders` wraps the whole stack, so the 500s of the
    outermost error handler (which ``add_middleware`` cannot wrap) carry the headers too."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def install(app: FastAPI, settings: GatewaySettings) -> None:
    """Add the middlewares. The last added runs first: the Host check comes before CORS and
    the routes, and its refusals carry the headers (:class:`SecureApp` adds them outside)."""
    if settings.gateway_allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.gateway_allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.served_hosts))


def origin_allowed(headers: Headers, settings: GatewaySettings) -> bool:
    """No Origin (not a browser), this server's own origin, or a configured one."""
    origin = headers.get("origin")
    if origin is None:
        return True
    origin = origin.lower()
    if origin in settings.gateway_allowed_origins:
        return True
    parts = urlsplit(origin)
    host = headers.get("host", "").lower()
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


async def require_same_origin(request: Request) -> None:
    """Dependency of state-changing routes: a cross-site page cannot post to them."""
    if not origin_allowed(request.headers, request.app.state.settings):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin request refused")
