"""REST routes over the Redis layout of the serving layer (``services/serving/keys.py``).

Results are stored as validated JSON by the sink, so routes return those bytes as they are
(no re-serialization) once they parse as a JSON object: what an older or foreign writer left
is skipped or refused (``stored.py``). The declared response models document the shape.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel
from starlette.convertors import Convertor, register_url_convertor

from streamsense.schemas.catalog import TASK_NAMES, Task
from streamsense.schemas.fields import MAX_ID_CHARS, SAFE_TEXT_PATTERN
from streamsense.services.gateway import stats as stats_mod
from streamsense.services.gateway import stored
from streamsense.services.gateway.cameras import CameraStatusReader
from streamsense.services.gateway.responses import (
    Cameras,
    LatestResult,
    Models,
    ResultPage,
    Sources,
    Stats,
)
from streamsense.services.gateway.store import list_models
from streamsense.services.serving import reads
from streamsense.services.serving.keys import JSON_FIELD, RedisKeys

MAX_LIMIT = 1000
MAX_IN_SERVICE_SOURCES = 200


class _AnyId(Convertor[str]):
    """The rest of the path, any character (``path`` stops at a newline): an id the contracts
    refuse gets a 422 that says why, not a 404 from the router."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("source_id", _AnyId())

#: What the contracts allow as a source id (anything else can have no results); ids may hold
#: ``/``, hence routes that take the rest of the path.
SourceId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=SAFE_TEXT_PATTERN)]


class ErrorBody(BaseModel):
    detail: str


_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "nothing stored for it (yet)"}
}
_502: dict[int | str, dict[str, Any]] = {
    502: {"model": ErrorBody, "description": "what is stored for it is not a valid result"}
}
router = APIRouter(prefix="/api", tags=["results"])


def _redis(request: Request) -> aioredis.Redis:
    r: aioredis.Redis = request.app.state.redis
    return r


def _keys(request: Request) -> RedisKeys:
    k: RedisKeys = request.app.state.keys
    return k


def _b(value: Any) -> bytes:
    """Replies come as bytes (the client does not decode); this also satisfies the types."""
    return value if isinstance(value, bytes) else str(value).encode()


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get("/sources", response_model=Sources)
async def sources(request: Request) -> Sources:
    """Sources with results per task, and the cameras (with results or a thumbnail)."""
    r, k = _redis(request), _keys(request)
    cap = request.app.state.settings.gateway_max_listed
    per_task: dict[str, reads.Listing[set[Any]]] = {
        task: await reads.members(r, k.sources(task), cap) for task in TASK_NAMES
    }
    thumbs = await reads.members(r, k.cameras, cap)
    tasks: dict[Any, list[str]] = {t: stats_mod.source_ids(m.items) for t, m in per_task.items()}
    cameras = set(stats_mod.source_ids(thumbs.items)) | set(tasks["detect"]) | set(tasks["segment"])
    listed = sorted(cameras)[:cap]
    totals: dict[str, int] = {t: m.total for t, m in per_task.items()}
    totals["cameras"] = thumbs.total
    cut = len(listed) < len(cameras) or any(m.truncated for m in [*per_task.values(), thumbs])
    return Sources(tasks=tasks, cameras=listed, totals=totals, truncated=cut)


@router.get(
    "/latest/{task}/{source:source_id}",
    response_model=LatestResult,
    responses={**_404, **_502},
)
async def latest(request: Request, task: Task, source: SourceId) -> Response:
    """The newest result of one source."""
    key = _keys(request).latest(task, source)
    fields: dict[Any, Any] = await _redis(request).hgetall(key)
    if JSON_FIELD.encode() not in fields:
        raise HTTPException(404, f"no {task} result for {source!r}")
    if stored.result_doc(key, fields) is None:
        what = f"latest {task} result of {source!r}"
        raise stored.refuse(what)
    written = fields.get(b"written_ms")
    written_ms = None if written is None else stored.count(written)
    if written is not None and written_ms is None:
        stored.malformed(key, "written_ms is not a number")
    head = orjson.dumps({"task": task, "source": source, "written_ms": written_ms})
    return _json(head[:-1] + b',"result":' + _b(fields[JSON_FIELD.encode()]) + b"}")


@router.get("/results/{task}/{source:source_id}", response_model=ResultPage)
async def results(
    request: Request,
    task: Task,
    source: SourceId,
    since: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{1,15}(-[0-9]{1,19})?$",  # ASCII: \d takes any script's digits
            description="a stream id (exclusive) or a time in ms since the epoch (inclusive)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> Response:
    """Recent results of one source from its Redis stream, oldest first.

    Without ``since``: the newest ``limit`` results. With it: up to ``limit`` results after it;
    page on with the returned ``last_id``."""
    r, key = _redis(request), _keys(request).stream(task, source)
    raw: Any
    if since is None:
        raw = list(reversed(await r.xrevrange(key, count=limit) or []))
    else:
        start = f"({since}" if "-" in since else since
        raw = await r.xrange(key, min=start, count=limit)
    entries: list[Any] = list(raw or [])
    # An entry that is not a result is left out (counted); paging goes on past it.
    usable = [(eid, f) for eid, f in entries if stored.result_doc(key, f) is not None]
    items = b",".join(
        b'{"id":"' + _b(eid) + b'","result":' + _b(fields[JSON_FIELD.encode()]) + b"}"
        for eid, fields in usable
    )
    last = _b(entries[-1][0]).decode() if entries else None
    skipped = len(entries) - len(usable)
    head = orjson.dumps({"task": task, "source": source, "last_id": last, "skipped": skipped})
    return _json(head[:-1] + b',"items":[' + items + b"]}")


@router.get(
    "/thumbnail/{camera:source_id}",
    response_class=Response,
    responses={
        200: {
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the latest downscaled frame",
        },
        **_404,
    },
)
async def thumbnail(request: Request, camera: SourceId) -> Response:
    """The latest JPEG thumbnail of a camera (kept for a short TTL)."""
    k = _keys(request)
    pipe = _redis(request).pipeline(transaction=False)
    pipe.get(k.thumb(camera))
    pipe.hgetall(k.thumb_meta(camera))
    jpeg, meta = await pipe.execute()
    meta = meta or {}
    if jpeg is None:
        raise HTTPException(404, f"no thumbnail for {camera!r}")
    headers = {"Cache-Control": "no-store"}
    for name in ("seq", "capture_ns", "width", "height"):
        value = meta.get(name.encode())
        if value is not None and _b(value).isdigit():  # numbers, never text into a header
            headers[f"X-Frame-{name.replace('_', '-')}"] = _b(value).decode()
    return Response(jpeg, media_type="image/jpeg", headers=headers)


@router.get("/cameras", response_model=Cameras, tags=["cameras"])
async def cameras(request: Request) -> Cameras:
    """Every camera's newest status (``cameras.status``) with the state to believe: ``stale``
    once it is older than three of its intervals (its producer is gone). An entry that is not
    a valid status is skipped, counted in ``malformed`` and logged."""
    reader: CameraStatusReader = request.app.state.camera_statuses
    return await reader.read(_redis(request))


@router.get("/models", response_model=Models, tags=["models"])
async def models(request: Request) -> Models:
    """Models in the store (cards, champions) and the versions that produced the latest
    result of each source (what is in service)."""
    root = request.app.state.settings.model_store_dir
    in_store = await asyncio.to_thread(list_models, root)
    r, k = _redis(request), _keys(request)
    seen: dict[tuple[str, str, str], int] = {}
    for task in TASK_NAMES:
        listing = await reads.members(r, k.sources(task), MAX_IN_SERVICE_SOURCES)
        members = stats_mod.source_ids(listing.items)
        pipe = r.pipeline(transaction=False)
        for s in members:
            pipe.hget(k.latest(task, s), JSON_FIELD)
        for s, raw in zip(members, await pipe.execute() if members else [], strict=True):
            if raw is None:
                continue
            doc = stored.result_doc(k.latest(task, s), {JSON_FIELD.encode(): raw})
            model = doc.get("model") if doc is not None else None
            if not isinstance(model, dict):
                continue
            ref = (task, str(model.get("name")), str(model.get("version")))
            seen[ref] = seen.get(ref, 0) + 1
    in_service = [
        {"task": t, "name": n, "version": v, "sources": c} for (t, n, v), c in sorted(seen.items())
    ]
    return Models.model_validate(
        {"store_found": root.is_dir(), "models": in_store, "in_service": in_service}
    )


@router.get("/stats", response_model=Stats, tags=["stats"])
async def stats(request: Request) -> Stats:
    """Throughput, end-to-end and sink latency per task over the recent window, sink lag."""
    hub = request.app.state.hub
    window = request.app.state.settings.gateway_stats_window_s
    return await stats_mod.compute(_redis(request), _keys(request), window, hub)
