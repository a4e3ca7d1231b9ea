from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsense.schemas.exceptions import SchemaError, UnknownSchemaError
from streamsense.schemas.export import json_schemas
from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import REGISTRY, decode, encode
from streamsense.schemas.results import (
    Box,
    Detection,
    DetectionResult,
    ModelRef,
    SourceRef,
    Timings,
)
from streamsense.schemas.text import TextEvent


def _text(**kw: object) -> TextEvent:
    base: dict[str, object] = {
        "source_id": "app.log",
        "text": "disk full",
        "ts_ns": 1,
        "seq": 0,
        "trace_id": "t1",
    }
    return TextEvent(**(base | kw))  # type: ignore[arg-type]


def test_text_event_round_trip_carries_schema_and_version() -> None:
    ev = _text()
    wire = encode(ev)
    assert json.loads(wire)["schema"] == "streamsense.text"
    assert json.loads(wire)["version"] == 1
    assert decode(wire, TextEvent) == ev


def test_detection_result_round_trip() -> None:
    box = Box(x1=0.1, y1=0.2, x2=0.3, y2=0.4)
    res = DetectionResult(
        source_id="cam-1",
        model=ModelRef(name="centernet", version="1"),
        source=SourceRef(topic="frames", partition=2, offset=41, seq=7),
        timings=Timings(consumed_ns=1, produced_ns=2, model_ms=3.5, batch_size=4),
        width=640,
        height=480,
        detections=[Detection(label="person", class_id=0, score=0.9, box=box, box_px=box)],
    )
    back = decode(encode(res))
    assert back == res
    assert isinstance(back, DetectionResult)
    assert back.source.offset == 41


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"schema": "streamsense.text", "version": 99}', "unknown schema/version"),
        (b'{"schema": "nope", "version": 1}', "unknown schema/version"),
        (b'{"schema": "streamsense.text", "version": 1, "text": "x"}', "source_id"),
    ],
)
def test_bad_messages_raise_one_error_type_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(SchemaError, match=reason):
        decode(payload)


def test_wrong_expected_type_is_an_error() -> None:
    with pytest.raises(SchemaError, match="expected 'streamsense.labeled_text'"):
        from streamsense.schemas.text import LabeledText

        decode(encode(_text()), LabeledText)


def test_unknown_schema_is_a_schema_error() -> None:
    assert issubclass(UnknownSchemaError, SchemaError)


def test_frame_headers_round_trip_and_errors() -> None:
    fh = FrameHeaders(
        camera_id="cam-1", seq=3, capture_ns=10, width=1280, height=720, trace_id="abc"
    )
    headers = fh.to_kafka_headers()
    assert ("ss-schema", b"streamsense.frame") in headers
    assert FrameHeaders.from_kafka_headers(headers) == fh
    with pytest.raises(SchemaError, match="version"):
        FrameHeaders.from_kafka_headers([(k, b"2" if k == "ss-version" else v) for k, v in headers])
    with pytest.raises(SchemaError, match="width"):
        FrameHeaders.from_kafka_headers([(k, b"-5" if k == "ss-width" else v) for k, v in headers])
    with pytest.raises(SchemaError, match="not UTF-8"):
        FrameHeaders.from_kafka_headers([*headers[:-1], ("ss-trace_id", b"\xff")])
    with pytest.raises(SchemaError, match="expected frame schema"):
        FrameHeaders.from_kafka_headers([])


def test_checked_in_json_schemas_match_the_models(repo_root: Path) -> None:
    """Fails when a model changes without `streamsense schemas export schemas/json`."""
    checked_in = {
        p.name: json.loads(p.read_text()) for p in (repo_root / "schemas/json").glob("*.json")
    }
    generated = json_schemas()
    assert set(checked_in) == set(generated), "run: streamsense schemas export schemas/json"
    for name, doc in generated.items():
        assert checked_in[name] == json.loads(json.dumps(doc)), f"{name} drifted"


def test_json_schema_validates_a_real_message() -> None:
    import jsonschema

    doc = json_schemas()["streamsense.text.v1.json"]
    jsonschema.validate(json.loads(encode(_text())), doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema": "streamsense.text", "version": 1}, doc)


def test_every_registered_message_has_a_schema_file() -> None:
    names = set(json_schemas())
    for name, version in REGISTRY:
        assert f"{name}.v{version}.json" in names


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_decode_never_raises_anything_but_schema_error(data: bytes) -> None:
    try:
        decode(data)
    except SchemaError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ss-schema", "ss-version", "ss-width", "ss-seq", "ss-camera_id", "x"]),
            st.binary(max_size=20),
        ),
        max_size=10,
    )
)
def test_frame_header_parser_never_raises_anything_but_schema_error(
    headers: list[tuple[str, bytes]],
) -> None:
    try:
        FrameHeaders.from_kafka_headers(headers)
    except SchemaError:
        pass


#: One of each class of hostile string: markup, event-handler attribute, quotes, a `javascript:`
#: URL in an attribute, control characters (log and terminal injection), a bidi override, a
#: zero-width character, a backslash, an overlong value.
HOSTILE = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    "x' onmouseover='window.__pwned=1",
    '"><a href="javascript:alert(1)">',
    "cam\n2026-01-01 INFO forged log line",
    "cam\x1b[31mred",
    "evil\u202egpj.exe",
    "zero\u200bwidth",
    "back\\slash",
    "x" * 300,
]


def _result(**kw: object) -> dict[str, object]:
    res = DetectionResult(
        source_id="cam-1",
        model=ModelRef(name="centernet", version="1"),
        source=SourceRef(topic="frames", partition=0, offset=1, seq=1),
        timings=Timings(consumed_ns=1, produced_ns=2, model_ms=1.0, batch_size=1),
        width=4,
        height=4,
        detections=[],
    ).to_json_dict()
    return res | kw


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    ("field", "wrap"),
    [
        ("source_id", lambda v: v),
        ("model", lambda v: {"name": v, "version": "1"}),
        ("model", lambda v: {"name": "centernet", "version": v}),
        ("detections", lambda v: [_detection(v)]),
        ("trace_id", lambda v: v),
    ],
)
def test_result_names_labels_and_ids_are_bounded(field: str, wrap: object, value: str) -> None:
    raw = json.dumps(_result(**{field: wrap(value)}))  # type: ignore[operator]
    with pytest.raises(SchemaError, match=field):
        decode(raw.encode())


def _detection(label: str) -> dict[str, object]:
    box = {"x1": 0, "y1": 0, "x2": 1, "y2": 1}
    return {"label": label, "class_id": 0, "score": 0.5, "box": box, "box_px": box}


@pytest.mark.parametrize("value", HOSTILE)
def test_text_and_frame_ids_are_bounded_but_text_stays_free(value: str) -> None:
    with pytest.raises(SchemaError, match="source_id"):
        decode(encode(_text()).replace(b'"app.log"', json.dumps(value).encode()))
    assert decode(encode(_text(text=value[:200])), TextEvent).text == value[:200]
    headers = FrameHeaders(
        camera_id="cam-1", seq=0, capture_ns=1, width=4, height=4, trace_id="t"
    ).to_kafka_headers()
    bad = [(k, value.encode() if k == "ss-camera_id" else v) for k, v in headers]
    with pytest.raises(SchemaError, match="camera_id"):
        FrameHeaders.from_kafka_headers(bad)


@pytest.mark.parametrize(
    "value", ["cam-1", "cam1:meta", "Fußgänger/Nord 2", "traffic light", "a.b_c-d@host"]
)
def test_ordinary_ids_and_labels_pass(value: str) -> None:
    res = _result(source_id=value, detections=[_detection(value)])
    back = decode(json.dumps(res).encode(), DetectionResult)
    assert back.source_id == value and back.detections[0].label == value


def test_ids_made_from_file_names_are_valid_and_explained_when_not() -> None:
    from streamsense.schemas.fields import source_id_from, source_id_problem

    assert source_id_from("app.log") == "app.log"
    made = source_id_from("it's <b>&\x1b\u202e.log")
    assert made == "it_s _b____.log" and source_id_problem(made) is None
    assert len(source_id_from("x" * 400)) == 256 and source_id_from("") == "_"
    assert source_id_problem("cam 1") is None
    assert "1 to 256" in (source_id_problem("") or "")
    assert "control characters" in (source_id_problem("a<b") or "")
