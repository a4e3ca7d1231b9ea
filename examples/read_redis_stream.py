"""Follow one source's results from the Redis serving layer (what the gateway serves).

The sink keeps recent results per task and source in a Redis Stream
(``<prefix>:<task>:<source>:stream``, field ``json``); ``XREAD BLOCK`` follows it live, and a
stream id is a resume point. Run it against the local stack::

    python examples/read_redis_stream.py sentiment reviews --max 10
"""

from __future__ import annotations

import argparse

import redis

from streamsense.schemas.registry import decode
from streamsense.services.serving.keys import JSON_FIELD, RedisKeys
from streamsense.services.sink.settings import SinkSettings


def follow(
    url: str, prefix: str, task: str, source: str, start: str, max_items: int, block_ms: int
) -> list[tuple[str, object]]:
    """Read from ``start`` (``0`` = oldest kept, ``$`` = only new ones) until ``max_items``
    results arrived or nothing came for ``block_ms``."""
    client = redis.Redis.from_url(url)
    key = RedisKeys(prefix).stream(task, source)
    out: list[tuple[str, object]] = []
    last = start
    try:
        if start == "$":  # pin "only new ones" to a concrete id: nothing slips in between reads
            newest = client.xrevrange(key, count=1)
            last = newest[0][0].decode() if newest else "0-0"
        print(f"following {key} after {last}", flush=True)
        while len(out) < max_items:
            reply = client.xread({key: last}, count=max_items - len(out), block=block_ms)
            if not reply:
                break
            for entry_id, fields in reply[0][1]:
                last = entry_id.decode()
                result = decode(fields[JSON_FIELD.encode()])
                out.append((last, result))
                print(last, type(result).__name__, getattr(result, "source_id", "?"), flush=True)
    finally:
        client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["detect", "segment", "sentiment"])
    parser.add_argument("source")
    parser.add_argument("--from", dest="start", default="0", help="stream id, 0 or $")
    parser.add_argument("--max", type=int, default=100)
    parser.add_argument("--block-ms", type=int, default=5000)
    parser.add_argument("--prefix", help="key prefix (default: STREAMSENSE_REDIS_PREFIX or ss)")
    args = parser.parse_args()
    # Redis URL and key prefix from STREAMSENSE_* like the sink that wrote the stream.
    settings = SinkSettings(service_name="example-redis-reader")
    prefix = args.prefix or settings.redis_prefix
    follow(
        settings.redis_url.get_secret_value(),
        prefix,
        args.task,
        args.source,
        args.start,
        args.max,
        args.block_ms,
    )


if __name__ == "__main__":
    main()
