from __future__ import annotations

import asyncio

from streamsense.schemas.analytics import Alert, WindowStat
from streamsense.services.analytics.redis_out import RedisPublisher
from streamsense.services.local import procs
from streamsense.services.serving.keys import RedisKeys


def _stat() -> WindowStat:
    return WindowStat(
        source_id="cam", kind="camera", window="tumbling",
        window_start_ns=0, window_end_ns=10, values={"frames": 3.0, "people.present": 0.5},
    )  # fmt: skip


def test_a_redis_outage_is_counted_and_the_writes_are_kept_for_the_next_flush() -> None:
    pub = RedisPublisher(f"redis://127.0.0.1:{procs.free_port()}/0", keys=RedisKeys("x"))
    pub.put_window(_stat())
    pub.put_alert(Alert(rule="r", source_id="cam", message="m", value=1, threshold=0, ts_ns=1))
    asyncio.run(pub.flush())  # nothing listens on that port: no exception
    assert pub.errors == 1 and pub.flushes == 0
    assert pub.pending == 2
    assert pub._hashes["x:analytics:camera:cam"] == {
        "tumbling.start_ns": "0", "tumbling.end_ns": "10",
        "tumbling.frames": "3", "tumbling.people.present": "0.5",
    }  # fmt: skip
    asyncio.run(pub.close())
