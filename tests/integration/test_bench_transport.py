"""The transport benchmark runs end to end and writes its JSON (figures are not asserted here:
speed targets are checked by running the benchmark, not by timed tests)."""

from __future__ import annotations

import pytest

from streamsense.services.bench import transport
from streamsense.services.settings import StreamsenseSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_transport_benchmark_measures_both_producers(settings: StreamsenseSettings) -> None:
    result = transport.run(settings, record_bytes=2000, records=300, rounds=1)
    assert result["record_bytes"] == 2000
    assert result["ours_msgs_per_s"] > 0 and result["kafka_perf_msgs_per_s"] > 0
    assert result["ratio"] == pytest.approx(
        result["ours_msgs_per_s"] / result["kafka_perf_msgs_per_s"], rel=0.01
    )
