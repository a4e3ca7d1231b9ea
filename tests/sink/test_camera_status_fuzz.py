"""Hostile records on ``cameras.status``: whatever the key and value, the sink's parser returns
the status or raises the one SchemaError that dead-letters it (naming ``topic[p]@offset``)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamsense.schemas.cameras import CameraStatus
from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.registry import decode, encode
from streamsense.services.sink.camera_status import StatusItem, parse_status
from tests.reliability.test_fuzz import mutated

VALID = CameraStatus(
    camera_id="gate", state="online", since_ns=1, source="stream rtsp://h/s", fps=5.0,
    frames_sent=3, frames_dropped=0, reconnects=0, updated_ns=2, interval_s=2.0,
    producer="p@h:1", last_frame_ns=2, last_seq=2,
).to_json_dict()  # fmt: skip


class Msg:
    def __init__(self, key: bytes | None, value: bytes | None) -> None:
        self._k, self._v = key, value

    def key(self) -> bytes | None:
        return self._k

    def value(self) -> bytes | None:
        return self._v

    def topic(self) -> str:
        return "cameras.status"

    def partition(self) -> int:
        return 1

    def offset(self) -> int:
        return 7


def _check(key: bytes | None, value: bytes | None) -> None:
    try:
        item = parse_status(Msg(key, value))  # type: ignore[arg-type]
    except SchemaError as exc:
        assert "cameras.status[1]@7" in str(exc)
        return
    assert isinstance(item, StatusItem) and key is not None
    assert item.camera_id == key.decode()
    if item.value is not None:  # a valid status of the key's camera, as sent
        status = decode(item.value, CameraStatus)
        assert status.camera_id == item.camera_id and decode(encode(status)) == status


@settings(max_examples=300, deadline=None)
@given(
    key=st.one_of(st.none(), st.binary(max_size=300)),
    value=st.one_of(st.none(), st.binary(max_size=300)),
)
def test_any_bytes_are_a_status_or_one_schema_error(key: bytes | None, value: bytes | None) -> None:
    _check(key, value)


@settings(max_examples=300, deadline=None)
@given(doc=mutated(VALID), key=st.sampled_from([b"gate", b"other", b"", "gäte".encode()]))
def test_mutated_statuses_are_a_status_or_one_schema_error(doc: dict[str, Any], key: bytes) -> None:
    _check(key, json.dumps(doc).encode())
