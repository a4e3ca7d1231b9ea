"""Camera states for ``GET /api/cameras``: the newest status of every camera from the serving
layer's hash (``RedisKeys.camera_status``), each with the state a reader should believe.

A producer publishes a status every ``interval_s`` while it runs, so a status older than
:data:`~streamsense.schemas.cameras.STALE_AFTER_INTERVALS` intervals means its producer is gone
(killed, host down) whatever the status says: that camera is ``stale``. Ages are measured on
the serving layer's clock (Redis ``TIME``), the clock ``/api/stats`` reports.

The sink writes only statuses that passed the contract, but the hash is shared storage: an
older or foreign writer may have left anything there. Such an entry is skipped (the others are
still answered), counted in the answer and in a metric, and logged once per distinct value.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter

from streamsense.schemas.cameras import CameraStatus
from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.registry import decode
from streamsense.services.gateway.responses import CameraEntry, Cameras, EffectiveState
from streamsense.services.serving import reads
from streamsense.services.serving.keys import RedisKeys

log = logging.getLogger(__name__)

MALFORMED = Counter(
    "streamsense_gateway_camera_status_malformed",
    "Entries of the camera status hash skipped as not a valid CameraStatus (each distinct "
    "value counted once)",
)
#: Distinct malformed entries remembered so each is logged once; past this many the memory is
#: cleared (a hash that full of garbage is logged again rather than grown without bound).
_REMEMBER = 10_000
_SHOWN_CHARS = 80


def _text(raw: Any) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def entry(status: CameraStatus, now_ns: int) -> CameraEntry:
    """The camera as a reader should see it at ``now_ns`` (serving layer's clock)."""
    age_s = max(0.0, (now_ns - status.updated_ns) / 1e9)
    frame_age_s = (
        None if status.last_frame_ns is None else max(0.0, (now_ns - status.last_frame_ns) / 1e9)
    )
    state: EffectiveState = status.state
    reason = status.reason
    if status.stale(now_ns):
        said = status.state + (f": {status.reason}" if status.reason else "")
        state = "stale"
        reason = f"no status for {age_s:.0f} s: its producer is gone (it last said {said})"
    return CameraEntry(
        camera_id=status.camera_id,
        state=state,
        reason=reason,
        status_age_s=round(age_s, 3),
        last_frame_age_s=None if frame_age_s is None else round(frame_age_s, 3),
        reported=status,
    )


class CameraStatusReader:
    """Reads the fleet's statuses, at most ``cap`` of them (the hash grows with every camera id
    ever published); remembers which malformed entries it already logged."""

    def __init__(self, keys: RedisKeys, cap: int) -> None:
        self.keys = keys
        self.cap = cap
        self._reported: set[tuple[str, str]] = set()

    async def read(self, r: aioredis.Redis) -> Cameras:
        listing = await reads.fields(r, self.keys.camera_status, self.cap)
        sec, usec = await r.time()
        now_ns = int(sec) * 1_000_000_000 + int(usec) * 1000
        cameras: list[CameraEntry] = []
        malformed = 0
        for raw_field, value in listing.items.items():
            camera = _text(raw_field)
            try:
                status = decode(value, CameraStatus)
                if status.camera_id != camera:
                    msg = f"it is the status of camera {status.camera_id!r}"
                    raise SchemaError(msg)
            except SchemaError as exc:
                malformed += 1
                self._malformed(camera, value, exc)
                continue
            cameras.append(entry(status, now_ns))
        cameras.sort(key=lambda c: c.camera_id)
        return Cameras(now_ms=now_ns // 1_000_000, cameras=cameras, malformed=malformed,
                       total=listing.total, truncated=listing.truncated)  # fmt: skip

    def _malformed(self, camera: str, value: Any, exc: SchemaError) -> None:
        digest = hashlib.sha256(value if isinstance(value, bytes) else _text(value).encode())
        seen = (camera, digest.hexdigest())
        if seen in self._reported:
            return
        if len(self._reported) >= _REMEMBER:
            self._reported.clear()
        self._reported.add(seen)
        MALFORMED.inc()
        log.warning(
            "%s[%r] is not a valid camera status (%s); skipped. The sink writes only valid "
            "ones: an older or foreign writer left it. HDEL it; a valid status of the camera "
            "replaces it",
            self.keys.camera_status,
            camera[:_SHOWN_CHARS],
            str(exc)[:200],
        )
