"""Records whose header keys are not UTF-8, as any client can send them.

Kafka's wire format lets a header key be any bytes, but confluent-kafka and aiokafka only
produce UTF-8 keys. aiokafka's pure-Python record builder writes whatever a key's ``encode``
returns, so a child process that runs without aiokafka's C extension sends such records to the
real broker.
"""

from __future__ import annotations

import os
import subprocess
import sys

import orjson

_CHILD = """
import asyncio, sys, orjson
from aiokafka import AIOKafkaProducer

class RawKey(str):
    def __new__(cls, raw):
        self = super().__new__(cls, "raw")
        self.raw = raw
        return self
    def encode(self, *args, **kwargs):
        return self.raw

async def main(bootstrap, topic, records):
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=16_000_000)
    await p.start()
    try:
        for r in records:
            headers = [(RawKey(bytes.fromhex(k)), bytes.fromhex(v)) for k, v in r["headers"]]
            key = bytes.fromhex(r["key"]) if r["key"] is not None else None
            await p.send_and_wait(topic, bytes.fromhex(r["value"]), key=key,
                                  partition=r["partition"], headers=headers)
    finally:
        await p.stop()

asyncio.run(main(sys.argv[1], sys.argv[2], orjson.loads(sys.stdin.buffer.read())))
"""

#: (key, value, headers as (raw key bytes, value)), optionally sent to one partition
RawRecord = tuple[bytes | None, bytes, list[tuple[bytes, bytes]]]


def produce_raw(bootstrap: str, topic: str, records: list[RawRecord], partition: int = 0) -> None:
    """Send ``records`` in order to ``topic[partition]``, header keys exactly as given."""
    body = [
        {"key": k.hex() if k is not None else None, "value": v.hex(), "partition": partition,
         "headers": [(hk.hex(), hv.hex()) for hk, hv in hs]}
        for k, v, hs in records
    ]  # fmt: skip
    subprocess.run(
        [sys.executable, "-c", _CHILD, bootstrap, topic], input=orjson.dumps(body),
        env={**os.environ, "AIOKAFKA_NO_EXTENSIONS": "1"}, check=True, timeout=60,
        capture_output=True,
    )  # fmt: skip
