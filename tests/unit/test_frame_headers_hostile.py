"""Frame headers a hostile producer could send: each is one SchemaError with the reason."""

from __future__ import annotations

import pytest

from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.frames import FrameHeaders

GOOD = FrameHeaders(
    camera_id="cam-1", seq=3, capture_ns=1, width=160, height=120, trace_id="t"
).to_kafka_headers()


def _with(*extra: tuple[str, bytes | None], drop: str = "") -> list[tuple[str, bytes | None]]:
    return [*((k, v) for k, v in GOOD if k != drop), *extra]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        # two camera ids: which one counts would depend on the reader (first or last wins)
        (_with(("ss-camera_id", b"cam-2")), "'ss-camera_id' appears more than once"),
        (_with(("ss-schema", b"streamsense.frame")), "'ss-schema' appears more than once"),
        (_with(("ss-camera_id", b"\xff\xfe"), drop="ss-camera_id"), "is not UTF-8"),
        (_with(("ss-camera_id", None), drop="ss-camera_id"), "has no value"),
        (_with(("ss-camera_id", b"c" * 100_000), drop="ss-camera_id"), "camera_id"),
        (_with(("ss-camera_id", b"cam:<b>"), drop="ss-camera_id"), "camera_id"),
        (_with(drop="ss-trace_id"), "trace_id: Field required"),
        (_with(("ss-extra", b"1")), "extra: Extra inputs are not permitted"),
    ],
)
def test_hostile_frame_headers_are_refused_with_the_reason(
    headers: list[tuple[str, bytes | None]], reason: str
) -> None:
    with pytest.raises(SchemaError) as err:
        FrameHeaders.from_kafka_headers(headers)
    assert reason in str(err.value)


def test_other_headers_may_repeat_and_carry_anything() -> None:
    noise = [("traceparent", b"\xff"), ("traceparent", b"x"), ("h", None), ("h", b"v" * 10**6)]
    assert FrameHeaders.from_kafka_headers([*GOOD, *noise]).camera_id == "cam-1"
