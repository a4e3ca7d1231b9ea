"""Redis clients of the serving layer, all with one retry policy (redis-py ``Retry``).

Connection errors and timeouts are retried a few times with jittered exponential backoff
(50 ms doubling, at most 1 s apart) before the caller sees them; callers that must outlast a
longer outage (the sink) loop on top of that.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

#: Errors after which a command is worth sending again (the server may be back).
TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)

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
