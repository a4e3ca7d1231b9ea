"""The thumbnail rate limit remembers cameras for its interval only. Camera ids are the
producers' choice: before, every id ever seen stayed in the sink's memory (3,002 entries after
3,000 frames of invented cameras against the real broker, growing without end)."""

from __future__ import annotations

import pytest

from streamsense.services.sink import handler as handler_mod
from streamsense.services.sink.handler import RedisSinkHandler
from streamsense.services.sink.settings import SinkSettings
from streamsense.services.sink.thumbnails import Thumbnail
from tests.sink import factory
from tests.sink.test_units import _Msg

LIMIT = 50


def _handler(interval_ms: int, monkeypatch: pytest.MonkeyPatch) -> RedisSinkHandler:
    monkeypatch.setattr(handler_mod, "THUMB_REMEMBERED", LIMIT)
    settings = SinkSettings(sink_thumb_min_interval_ms=interval_ms)
    return RedisSinkHandler(settings, None, {"f": None})  # type: ignore[arg-type]


def _frames(cameras: range) -> list[_Msg]:
    jpeg, _ = factory.jpeg_frame("x", 0)
    msgs = []
    for i in cameras:
        _, headers = factory.jpeg_frame(f"invented-{i}", 0)
        msgs.append(_Msg("f", jpeg, headers))
    return msgs


def test_invented_cameras_outside_the_interval_are_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = _handler(1, monkeypatch)  # 1 ms: each decode takes longer, so earlier ids are stale
    for start in range(0, 300, 30):  # batches of 30 new ids, as the loop would hand them over
        items = h.prepare(_frames(range(start, start + 30)))  # type: ignore[arg-type]
        assert all(isinstance(it, Thumbnail) for it in items), "every camera gets its thumbnail"
        assert len(h._thumb_at) <= 2 * LIMIT
    assert h._thumb_prune_at == LIMIT


def test_cameras_inside_the_interval_are_kept_and_still_rate_limited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = _handler(60_000, monkeypatch)
    h.prepare(_frames(range(3 * LIMIT)))  # type: ignore[arg-type]
    assert len(h._thumb_at) == 3 * LIMIT, "none may be dropped: each is inside its interval"
    again = h.prepare(_frames(range(3)))  # type: ignore[arg-type]
    assert again == [None, None, None], "a camera seen a moment ago gets no second thumbnail"


def test_no_interval_remembers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    h = _handler(0, monkeypatch)
    items = h.prepare(_frames(range(20)))  # type: ignore[arg-type]
    assert all(isinstance(it, Thumbnail) for it in items)
    assert h._thumb_at == {}
