"""Bounded reads of the serving layer's listings: the sets of source ids and the camera status
hash.

A listing grows with every id ever written (a producer that invents ids makes it as large as
it likes), so no reader takes one whole: at most ``cap`` entries (SSCAN / HSCAN: an arbitrary
subset when there are more), with the total (SCARD / HLEN), so an answer can say it was cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis

C = TypeVar("C", set[Any], dict[Any, Any])


@dataclass(frozen=True, slots=True)
class Listing(Generic[C]):
    items: C
    total: int

    @property
    def truncated(self) -> bool:
        return self.total > len(self.items)


async def members(r: aioredis.Redis, key: str, cap: int) -> Listing[set[Any]]:
    """At most ``cap`` members of the set at ``key``, and how many it has."""
    total = int(await r.scard(key))
    if total <= cap:
        got = set(await r.smembers(key))
    else:
        got = set()
        async for m in r.sscan_iter(key, count=min(cap, 1000)):
            got.add(m)
            if len(got) >= cap:
                break
    total = max(total, len(got))  # it may have grown between the two calls
    return Listing(got if len(got) <= cap else set(list(got)[:cap]), total)


async def fields(r: aioredis.Redis, key: str, cap: int) -> Listing[dict[Any, Any]]:
    """At most ``cap`` fields (with their values) of the hash at ``key``, and how many it has."""
    total = int(await r.hlen(key))
    if total <= cap:
        got = dict(await r.hgetall(key))
    else:
        got = {}
        async for name, value in r.hscan_iter(key, count=min(cap, 1000)):
            got[name] = value
            if len(got) >= cap:
                break
    total = max(total, len(got))
    return Listing(got if len(got) <= cap else dict(list(got.items())[:cap]), total)
