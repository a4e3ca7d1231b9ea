"""Fast checks without Kafka or Redis: key layout, thumbnails, result decoding in prepare."""

from __future__ import annotations

import uuid
from typing import Any

import cv2
import numpy as np
import pytest
from confluent_kafka import KafkaError, Message

from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import encode
from streamsense.services.kafka.exceptions import UnreadableRecordError
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.sink.exceptions import ThumbnailError
from streamsense.services.sink.handler import RedisSinkHandler, ResultItem
from streamsense.services.sink.settings import SinkSettings
from streamsense.services.sink.thumbnails import make_thumbnail
from streamsense.services.sink.writer import Rejected
from tests.sink import factory


def test_layout_names_and_channel_parsing() -> None:
    k = RedisKeys("ss")
    assert k.stream("detect", "cam-1") == "ss:detect:cam-1:stream"
    # a ':' (or any character outside [A-Za-z0-9._-]) is %-encoded: no id reaches another's keys
    assert k.stream("detect", "cam:1") == "ss:detect:cam%3A1:stream"
    assert k.thumb_meta("cam1") != k.thumb("cam1:meta") and k.thumb("cam1:meta").endswith("%3Ameta")
    assert k.stream("detect", "a%3Ab") != k.stream("detect", "a:b")
    assert k.latest("sentiment", "log") == "ss:sentiment:log:latest"
    assert k.channel("segment", "cam:1") == "ss:live:segment:cam%3A1"
    assert k.parse_channel(k.channel("segment", "cam:1")) == ("segment", "cam:1")
    assert k.parse_channel(k.channel("detect", "kamera ü*?")) == ("detect", "kamera ü*?")
    assert k.parse_channel("other:live:detect:x") is None
    assert k.parse_channel("ss:live:detect") is None
    assert k.thumb("c") == "ss:thumb:c" and k.cameras == "ss:cameras"


def _meta(width: int, height: int, encoding: str = "jpeg") -> FrameHeaders:
    return FrameHeaders(
        camera_id="c",
        seq=1,
        capture_ns=1,
        width=width,
        height=height,
        encoding=encoding,  # type: ignore[arg-type]
        trace_id=uuid.uuid4().hex,
    )


@pytest.mark.parametrize(
    ("w", "h", "ext"), [(1280, 720, ".jpg"), (200, 100, ".jpg"), (640, 480, ".png")]
)
def test_thumbnail_is_downscaled_never_upscaled(w: int, h: int, ext: str) -> None:
    img = np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    thumb = make_thumbnail(buf.tobytes(), _meta(w, h, ext[1:].replace("jpg", "jpeg")), 320, 75)
    out = cv2.imdecode(np.frombuffer(thumb.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert out.shape[1] == min(w, 320)
    assert abs(out.shape[0] - round(h * min(w, 320) / w)) <= 1
    assert (thumb.width, thumb.height) == (out.shape[1], out.shape[0])


def test_undecodable_frame_raises_thumbnail_error() -> None:
    with pytest.raises(ThumbnailError, match="undecodable"):
        make_thumbnail(b"\xff\xd8garbage", _meta(640, 480), 320, 75)


class _Msg:
    """The few confluent_kafka.Message methods prepare() uses."""

    def __init__(self, topic: str, value: bytes, headers: Any = None) -> None:
        self._t, self._v, self._h = topic, value, headers

    def topic(self) -> str:
        return self._t

    def value(self) -> bytes:
        return self._v

    def headers(self) -> Any:
        return self._h

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 0

    def error(self) -> None:
        return None


def test_prepare_makes_an_unreadable_result_a_dead_letter_and_skips_an_unreadable_frame() -> None:
    handler = RedisSinkHandler(SinkSettings(), None, {"r.s": "sentiment", "f": None})  # type: ignore[arg-type]
    err = KafkaError(KafkaError._BAD_COMPRESSION, "Decompression (codec 0x4) failed")
    stand_ins = [Message(topic=t, partition=1, offset=7, error=err) for t in ("r.s", "f")]
    items = handler.prepare(stand_ins)
    assert isinstance(items[0], Rejected) and (items[0].tp, items[0].offset) == (("r.s", 1), 7)
    assert isinstance(items[0].error, UnreadableRecordError)
    assert items[1] is None, "a frame's dead letter is the workers' to send"


def test_prepare_decodes_results_and_keeps_only_the_newest_frame_per_camera() -> None:
    settings = SinkSettings(sink_thumb_min_interval_ms=0)
    handler = RedisSinkHandler(settings, None, {"r.s": "sentiment", "f": None})  # type: ignore[arg-type]
    good = encode(factory.sentiment("log", 1))
    jpeg1, h1 = factory.jpeg_frame("cam", 1)
    jpeg2, h2 = factory.jpeg_frame("cam", 2)
    msgs = [
        _Msg("r.s", good),
        _Msg("r.s", b"{"),
        _Msg("f", jpeg2, h2),
        _Msg("f", jpeg1, h1),
        _Msg("unknown", good),
    ]
    items = handler.prepare(msgs)  # type: ignore[arg-type]
    produced = items[0].produced_ns  # type: ignore[union-attr]
    assert items[0] == ResultItem("sentiment", "log", good, produced, ("r.s", 0), 0)
    assert isinstance(items[1], Rejected) and type(items[1].error).__name__ == "SchemaError"
    assert (items[1].tp, items[1].offset) == (("r.s", 0), 0), "where it is, for the position"
    assert getattr(items[2], "seq", None) == 2, "seq 2 is the newest although it came first"
    assert items[3] is None
    assert isinstance(items[4], ValueError)
