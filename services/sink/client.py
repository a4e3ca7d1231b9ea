"""Redis clients with the retry policy of the serving layer (redis-py ``Retry``)."""

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


def sync_client(url: str, timeout: float = 2.0, retries: int = 3) -> redis.Redis:
    """A client whose commands and pipelines retry connection errors with backoff."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), retries),
        health_check_interval=30,
        client_name="streamsense",
    )


def async_client(url: str, timeout: float = 2.0, retries: int = 3) -> aioredis.Redis:
    """The asyncio counterpart (the gateway). No socket timeout: pub/sub reads block."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        retry=AsyncRetry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), retries),
        health_check_interval=30,
        client_name="streamsense-gateway",
    )
