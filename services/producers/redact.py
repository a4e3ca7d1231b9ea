"""Camera URLs without their secrets, for logs, errors, ``--check`` and ``cameras.status``.

A URL's password is only where a URL parser finds it when it is percent-encoded. Operators
write ``rtsp://admin:pa/ss@cam/`` or ``rtsp://admin:pa#ss@cam/`` as well, and there a parser
finds no password at all (the authority ends at the ``/`` or ``#``), so a parser-based
redaction printed the password whole. Here everything between ``scheme://`` and the last ``@``
is credentials (only a user name that holds no ``/?#`` stays visible): an ``@`` that was in a
query hides a little too much, never too little. Many cameras also take credentials as query
parameters (``?user=admin&password=...``, ``&token=...``): values of parameters whose names
look like secrets are hidden too. Strings without a ``scheme:`` (file paths) are unchanged.
"""

from __future__ import annotations

import re

MASK = "***"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*:/*)(.*)", re.DOTALL)
#: a query parameter whose name holds one of these carries a secret
_SECRET_NAMES = ("pass", "pwd", "secret", "token", "key", "auth", "sig", "cred", "session")


def redact_url(text: str) -> str:
    """``text`` with any credentials in it replaced by ``***`` (``rtsp://admin:***@cam/``)."""
    m = _SCHEME.fullmatch(text)
    if m is None:
        return text
    prefix, rest = m.groups()
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        keep = colon and user and not set(user) & set("/?#")
        rest = (f"{user}:{MASK}@" if keep else f"{MASK}@") + rest[at + 1 :]
    return prefix + _redact_query(rest)


def _redact_query(rest: str) -> str:
    before, q, after = rest.partition("?")
    if not q:
        return rest
    query, hash_, fragment = after.partition("#")
    params = []
    for param in re.split(r"([&;])", query):
        name, eq, value = param.partition("=")
        if eq and value and any(s in name.lower() for s in _SECRET_NAMES):
            param = f"{name}={MASK}"
        params.append(param)
    return f"{before}?{''.join(params)}{hash_}{fragment}"
