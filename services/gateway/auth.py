"""Optional bearer-token auth, and single-use tickets for browser WebSockets.

The token travels only in the ``Authorization`` header, never in a URL (URLs end up in logs,
browser history and Referer headers). A browser cannot set headers on a WebSocket handshake,
so the dashboard first asks ``POST /api/live/ticket`` (with the header) for a ticket: random,
valid for ``STREAMSENSE_GATEWAY_TICKET_TTL_S`` and for one handshake only, so a ticket that
does reach a log is already spent.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import HTTPException, Request, Security, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="STREAMSENSE_GATEWAY_TOKEN")
#: Outstanding tickets at most; the oldest go first (a client asking in a loop gains nothing).
MAX_TICKETS = 1024


def token_matches(expected: str, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def _expected(conn: Request | WebSocket) -> str | None:
    token = conn.app.state.settings.gateway_token
    return None if token is None else str(token.get_secret_value())


async def require_token(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
) -> None:
    """Dependency of every protected route when a token is configured."""
    expected = _expected(request)
    if expected is None:
        return
    if not token_matches(expected, bearer.credentials if bearer is not None else None):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong token (send it as Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


@dataclass
class Tickets:
    """Single-use WebSocket tickets with a time to live (one gateway process holds them)."""

    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    _issued: dict[str, float] = field(default_factory=dict)

    def issue(self) -> str:
        now = self.clock()
        for ticket, expires in list(self._issued.items()):
            if expires <= now:
                del self._issued[ticket]
        while len(self._issued) >= MAX_TICKETS:
            del self._issued[next(iter(self._issued))]
        ticket = secrets.token_urlsafe(32)
        self._issued[ticket] = now + self.ttl_s
        return ticket

    def redeem(self, ticket: str | None) -> bool:
        """True once for a ticket issued less than ``ttl_s`` ago."""
        if not ticket:
            return False
        expires = self._issued.pop(ticket, None)
        return expires is not None and self.clock() < expires


def websocket_allowed(ws: WebSocket) -> bool:
    """A bearer header (non-browser clients) or an unspent ticket, when a token is set."""
    expected = _expected(ws)
    if expected is None:
        return True
    scheme, _, value = ws.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token_matches(expected, value):
        return True
    tickets: Tickets = ws.app.state.tickets
    return tickets.redeem(ws.query_params.get("ticket"))
