"""Fuzzing the decoders not fuzzed elsewhere (tests/unit/test_schemas.py fuzzes raw bytes into
``decode`` and frame headers; tests/workers/test_frames.py JPEG bytes): labels, results as the
sink decodes them, model cards and champion pointers in the store, text lines as the text
producer turns them into events. Each may only fail with its package's one error type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from streamsense.models.card import InputSpec, ModelCard, Source
from streamsense.models.exceptions import ModelError
from streamsense.models.store import ModelStore
from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.registry import decode, encode
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.schemas.text import LabeledText, TextEvent
from streamsense.services.producers.exceptions import LineError
from streamsense.services.producers.lines import LineSplitter, line_text
from streamsense.services.sink.handler import RedisSinkHandler, ResultItem
from streamsense.services.sink.settings import SinkSettings
from streamsense.services.sink.writer import Rejected
from tests.sink import factory

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """A valid message with one field replaced by any JSON value, deleted, or one key added."""
    doc = json.loads(json.dumps(valid))
    path = draw(st.sampled_from(_paths(doc)))
    *parent_path, last = path
    parent = doc
    for p in parent_path:
        parent = parent[p]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        parent[last] = draw(JSON)
    elif action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=8))] = draw(JSON)
    return doc


def _decode_errors(doc: Any) -> tuple[type[Exception], ...]:
    return (SchemaError,)


@pytest.mark.parametrize("header", [{"schema": []}, {"version": {"v": 1}}])
def test_an_unhashable_schema_or_version_is_a_schema_error(header: dict[str, Any]) -> None:
    with pytest.raises(SchemaError):
        decode(json.dumps({**LABEL, **header}).encode())


LABEL = json.loads(encode(LabeledText(source_id="ui", text="great", label="positive", ts_ns=1)))
RESULTS = {
    DetectionResult: json.loads(encode(factory.detection("cam-1", 3, [(0.1, 0.1, 0.5, 0.6)]))),
    SegmentResult: json.loads(encode(factory.segment("cam-1", 3, factory.person_mask(32, 32)))),
    SentimentResult: json.loads(encode(factory.sentiment("app.log", 3))),
}


@settings(max_examples=300, deadline=None)
@given(mutated(LABEL))
def test_labels_decode_or_raise_schema_error(doc: dict[str, Any]) -> None:
    try:
        label = decode(json.dumps(doc).encode(), LabeledText)
    except _decode_errors(doc):
        return
    assert decode(encode(label), LabeledText) == label
    assert label.text and label.label and len(label.text) <= 65536


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_results_decode_or_raise_schema_error(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(sorted(RESULTS, key=lambda c: c.SCHEMA)))
    doc = data.draw(mutated(RESULTS[cls]))
    try:
        result = decode(json.dumps(doc).encode(), cls)
    except _decode_errors(doc):
        return
    assert decode(encode(result), cls) == result
    assert result.source.offset >= 0 and result.source.partition >= 0


class FakeMsg:
    def __init__(self, topic: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        self._t, self._v, self._h = topic, value, headers

    def topic(self) -> str:
        return self._t

    def value(self) -> bytes | None:
        return self._v

    def headers(self) -> list[tuple[str, bytes]]:
        return self._h

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 0

    def error(self) -> None:
        return None


@pytest.fixture(scope="module")
def sink_handler() -> RedisSinkHandler:
    s = SinkSettings(redis_url="redis://127.0.0.1:1/0", sink_thumb_min_interval_ms=0)
    topics = {"results.detections": "detect", "results.sentiment": "sentiment", "frames": None}
    return RedisSinkHandler(s, redis.Redis(port=1), topics)  # prepare never touches Redis


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["results.detections", "results.sentiment", "frames", "other"]),
            st.one_of(
                st.none(),
                st.binary(max_size=200),
                mutated(RESULTS[SentimentResult]).map(lambda d: json.dumps(d).encode()),
                mutated(RESULTS[DetectionResult]).map(lambda d: json.dumps(d).encode()),
            ),
            st.lists(
                st.tuples(
                    st.sampled_from(["ss-schema", "ss-version", "ss-width", "ss-camera_id", "x"]),
                    st.binary(max_size=12),
                ),
                max_size=4,
            ),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_sink_prepares_any_batch_without_raising(
    sink_handler: RedisSinkHandler, batch: list[tuple[str, bytes | None, list[Any]]]
) -> None:
    msgs = [FakeMsg(t, v, h) for t, v, h in batch]
    items = sink_handler.prepare(msgs)  # type: ignore[arg-type]
    assert len(items) == len(msgs)
    for msg, item in zip(msgs, items, strict=True):
        if msg.topic() == "other":
            assert isinstance(item, ValueError)
        elif msg.topic() != "frames":
            allowed = _decode_errors(_json_or_none(msg.value()))
            # a result it refuses is a dead letter at its place (the Redis position passes it)
            error = item.error if isinstance(item, Rejected) else item
            assert isinstance(error, (ResultItem, *allowed)), item
            if isinstance(item, ResultItem):  # stored as validated: the same JSON, re-encoded
                assert json.loads(item.value) == json.loads(msg.value() or b"")


def _json_or_none(raw: bytes | None) -> Any:
    try:
        return json.loads(raw or b"")
    except ValueError:
        return None


CARD = ModelCard(
    name="m",
    version="1",
    task="sentiment",
    adapter="keras_text",
    format="keras",
    artifact="model.keras",
    sha256="0" * 64,
    licence="test",
    source=Source(kind="user"),
    input=InputSpec(kind="text", shape=[None], dtype="string"),
    labels=["negative", "neutral", "positive"],
).model_dump(mode="json")


@settings(max_examples=300, deadline=None)
@given(st.one_of(mutated(CARD).map(lambda d: json.dumps(d).encode()), st.binary(max_size=300)))
def test_model_cards_validate_or_raise_validation_error(raw: bytes) -> None:
    try:
        card = ModelCard.model_validate_json(raw)
    except ValidationError:
        return
    assert ModelCard.model_validate_json(card.model_dump_json()) == card


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    card=st.one_of(mutated(CARD).map(lambda d: json.dumps(d).encode()), st.binary(max_size=100)),
    champion=st.one_of(
        JSON.map(lambda v: json.dumps({"version": v}).encode()),
        st.binary(max_size=60),
    ),
)
def test_a_garbled_store_raises_only_model_errors(
    tmp_path: Path, card: bytes, champion: bytes
) -> None:
    root = tmp_path / "store"
    (root / "m" / "1").mkdir(parents=True, exist_ok=True)
    (root / "m" / "1" / "card.json").write_bytes(card)
    (root / "m" / "1" / "model.keras").write_bytes(b"not a model")
    (root / "m" / "champion.json").write_bytes(champion)
    store = ModelStore(root)
    try:
        version = store.champion("m")
        if version is not None:
            store.verify("m", version)
    except ModelError:
        pass
    try:
        store.verify("m", "1")
    except ModelError:
        pass  # the card cannot claim the sha256 of this artifact: it never verifies
    else:
        pytest.fail("a garbled version verified")


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=600),
        st.lists(
            st.one_of(JSON.map(json.dumps), st.dictionaries(st.just("msg"), JSON).map(json.dumps)),
            max_size=5,
        ).map(lambda lines: "\n".join(lines).encode()),
    ),
    max_bytes=st.integers(16, 200),
    field=st.sampled_from([None, "msg", "msg.text"]),
)
def test_any_line_becomes_an_event_or_a_line_error(
    data: bytes, max_bytes: int, field: str | None
) -> None:
    """What the text producer does per line: text and flags, then a valid TextEvent."""
    splitter = LineSplitter(max_bytes)
    lines = splitter.feed(data)
    last = splitter.finish()
    for seq, raw in enumerate([*lines, *([last] if last else [])]):
        try:
            lt = line_text(raw, field)
        except LineError as exc:
            assert field is not None and str(exc)
            continue
        ev = TextEvent(
            source_id="app.log", text=lt.text, ts_ns=1, seq=seq, trace_id="t",
            position=raw.start, flags=lt.flags,
        )  # fmt: skip
        assert decode(encode(ev), TextEvent) == ev
        assert len(lt.text.encode("utf-8", "surrogatepass")) <= max_bytes * 3
