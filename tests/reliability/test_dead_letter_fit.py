"""Dead letters always fit (pure functions, no Kafka; ``test_hostile.py`` sends them for real):
whatever the size of the original key, headers and value, the dead letter is within its topic's
budget, says what was cut, and keeps what fits untouched."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from streamsense.schemas.catalog import FRAME_MAX_BYTES
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.services.kafka.dlq import HEADERS_KEEP, KEY_KEEP, dead_letter, record_size
from streamsense.services.kafka.topics import (
    DEFAULT_DEAD_LETTER_BYTES,
    DLQ_HEADROOM,
    RECORD_MARGIN,
    TOPICS,
    catalogue_spec,
    dead_letter_budget,
    expand,
)

INFO = DeadLetterInfo(
    error_class="SchemaError", error_message="not valid JSON/UTF-8: " + "é" * 4000,
    original_topic="text", original_partition=0, original_offset=7, service="worker-sentiment",
)  # fmt: skip
BUDGET = 1024 * 1024 - RECORD_MARGIN


def test_a_dead_letter_that_fits_is_the_original_plus_the_reason() -> None:
    headers = [("trace", b"abc")]
    letter = dead_letter(b"key", b"value", headers, INFO, BUDGET)
    assert (letter.key, letter.value) == (b"key", b"value")
    assert letter.headers == [("trace", b"abc"), *INFO.to_kafka_headers()]
    assert not any(k.startswith("dlq-payload") or k.startswith("dlq-original-s") for k, _ in
                   letter.headers)  # fmt: skip


def test_a_value_over_the_budget_keeps_a_prefix_and_its_size_and_sha256() -> None:
    value = bytes(range(256)) * 8000  # 2 MB
    letter = dead_letter("src", value, [("trace", b"abc")], INFO, BUDGET)
    assert record_size(letter.key, letter.value, letter.headers) <= BUDGET
    assert value.startswith(letter.value or b"") and len(letter.value or b"") > BUDGET - 32_000
    parsed = DeadLetterInfo.from_kafka_headers(letter.headers)
    assert parsed.payload_truncated and parsed.original_size == len(value)
    assert parsed.original_sha256 == hashlib.sha256(value).hexdigest()
    assert (parsed.headers_dropped, parsed.original_key_size) == (0, None)
    assert ("trace", b"abc") in letter.headers and letter.key == b"src"


def test_huge_keys_and_headers_are_cut_too() -> None:
    headers = [(f"h{i}", b"x" * 10_000) for i in range(100)]  # 1 MB of headers
    letter = dead_letter(b"k" * 100_000, b"v" * 10, headers, INFO, BUDGET)
    assert record_size(letter.key, letter.value, letter.headers) <= BUDGET
    parsed = DeadLetterInfo.from_kafka_headers(letter.headers)
    assert parsed.original_key_size == 100_000 and letter.key == b"k" * KEY_KEEP
    kept = [h for h in letter.headers if h[0].startswith("h")]
    assert parsed.headers_dropped == 100 - len(kept)
    assert record_size(None, None, kept) <= HEADERS_KEEP
    assert letter.value == b"v" * 10


def test_without_any_budget_only_the_reason_and_identity_remain() -> None:
    letter = dead_letter(b"k", b"v" * 1000, [("h", b"x")], INFO, 0)
    assert letter.value == b"" and letter.headers[-1][0].startswith("dlq-")
    assert DeadLetterInfo.from_kafka_headers(letter.headers).original_size == 1000


@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(max_size=20_000),
    value_size=st.integers(0, 3_000_000),
    headers=st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=50_000)), max_size=40),
)
def test_any_record_fits_its_budget(
    key: bytes, value_size: int, headers: list[tuple[str, bytes]]
) -> None:
    letter = dead_letter(key, b"z" * value_size, headers, INFO, BUDGET)
    assert record_size(letter.key, letter.value, letter.headers) <= BUDGET
    parsed = DeadLetterInfo.from_kafka_headers(
        [h for h in letter.headers if h[0].startswith("dlq-")]
    )
    assert parsed.error_class == "SchemaError"
    if not parsed.payload_truncated:
        assert letter.value == b"z" * value_size and letter.key == key


def test_every_dlq_topic_holds_more_than_its_sources_budget() -> None:
    specs = {s.name: s for s in expand(TOPICS, "dev.")}
    for spec in TOPICS:
        if not spec.with_dlq:
            continue
        dlq = specs[f"dev.{spec.name}.dlq"]
        budget = dead_letter_budget(f"dev.{spec.name}", "dev.")
        assert budget == spec.max_message_bytes - RECORD_MARGIN
        assert dlq.max_message_bytes == spec.max_message_bytes + DLQ_HEADROOM
        assert budget <= FRAME_MAX_BYTES, "within librdkafka's message.max.bytes of our producer"


def test_a_topic_is_matched_to_its_spec_with_or_without_the_prefix() -> None:
    assert catalogue_spec("dev.labels.text", "dev.").name == "labels.text"  # type: ignore[union-attr]
    assert catalogue_spec("dev.labels.text").name == "labels.text"  # type: ignore[union-attr]
    assert catalogue_spec("x.frames").name == "frames"  # type: ignore[union-attr]
    assert catalogue_spec("dev.frames", "prod.") is None
    assert dead_letter_budget("t.0f3a9c") == DEFAULT_DEAD_LETTER_BYTES
