"""Optional bearer-token auth for REST and WebSocket (header or ``?token=``)."""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request, Security, WebSocket, status
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="STREAMSENSE_GATEWAY_TOKEN")
_query = APIKeyQuery(name="token", auto_error=False, description="the same token as a query")


def token_matches(expected: str, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def _expected(request: Request | WebSocket) -> str | None:
    token = request.app.state.settings.gateway_token
    return None if token is None else str(token.get_secret_value())


async def require_token(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
    query: str | None = Security(_query),
) -> None:
    """Dependency of every API route when a token is configured."""
    expected = _expected(request)
    if expected is None:
        return
    given = bearer.credentials if bearer is not None else query
    if not token_matches(expected, given):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong token",
            headers={"WWW-Authenticate": "Bearer"},
        )


def websocket_allowed(ws: WebSocket) -> bool:
    expected = _expected(ws)
    if expected is None:
        return True
    header = ws.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    given = value if scheme.lower() == "bearer" and value else ws.query_params.get("token")
    return token_matches(expected, given)
