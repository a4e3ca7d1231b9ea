"""Redis clients of the serving layer, all with one retry policy (redis-py ``Retry``).

Connection errors and timeouts are retried a few times with jittered exponential backoff
(50 ms doubling, at most 1 s apart) before the caller sees them; callers that must outlast a
longer outage (the sink) loop on top of that.
"""

from __future__ import annotations

import re

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    ExecAbortError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

#: Errors after which a command is worth sending again (the server may be back).
TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)

#: Error replies that mean "not now" rather than "never": the server is out of memory (maxmemory
#: with noeviction), a read-only replica (a failover in progress), loading, busy with a script,
#: or a cluster that is reconfiguring. A write refused with one is sent again, never given up.
TRANSIENT_CODES = ("OOM", "LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN",
                   "CLUSTERDOWN", "NOREPLICAS")  # fmt: skip
#: redis-py's classes for some of them: it strips the code from their message.
_TRANSIENT_CLASSES = (OutOfMemoryError, ReadOnlyError, TryAgainError, ExecAbortError)
#: redis-py prefixes an error raised from a transaction with the command that caused it (the
#: greedy match: the command's arguments may hold the same words).
_ANNOTATION = re.compile(r"^Command # \d+ \(.*\) of pipeline caused error: ", re.DOTALL)

RETRIES = 3
CONNECT_TIMEOUT_S = 2.0


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(cap=1.0, base=0.05)


def sync_client(
    url: str, timeout: float = CONNECT_TIMEOUT_S, retries: int = RETRIES, name: str = "streamsense"
) -> redis.Redis:
    """A client whose commands and pipelines retry connection errors with backoff."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(_backoff(), retries),
        health_check_interval=30,
        client_name=name,
    )


def async_client(
    url: str,
    timeout: float = CONNECT_TIMEOUT_S,
    retries: int = RETRIES,
    *,
    read_timeout: float | None = None,
    name: str = "streamsense",
) -> aioredis.Redis:
    """The asyncio counterpart. ``read_timeout`` None suits pub/sub, whose reads block."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=read_timeout,
        socket_connect_timeout=timeout,
        retry=AsyncRetry(_backoff(), retries),
        health_check_interval=30,
        client_name=name,
    )


def is_transient_reply(reply: object) -> bool:
    """Whether ``reply`` (an error raised, or one in a pipeline's replies) is an error reply
    that means "not now" (:data:`TRANSIENT_CODES`), however redis-py presents it: as its own
    class without the code, annotated with the command when raised from a transaction, or as
    a plain :class:`ResponseError` whose message starts with the code. ``EXECABORT`` (a
    transaction discarded because a command was refused when queued) counts: what refuses a
    command at queue time is the server's state (memory, role), never the data."""
    if isinstance(reply, _TRANSIENT_CLASSES):
        return True
    if not isinstance(reply, ResponseError):
        return False
    if getattr(reply, "status_code", None) in TRANSIENT_CODES:
        return True
    text = _ANNOTATION.sub("", str(reply.args[0]) if reply.args else "")
    return text.startswith(TRANSIENT_CODES)
