"""``bench latency``'s figures: percentiles and where a median result's time goes."""

from __future__ import annotations

from streamsense.services.bench.harness import Sample
from streamsense.services.bench.latency import hops_p50, percentiles


def test_hops_are_the_median_of_each_hop_and_skip_results_without_timings() -> None:
    window = [
        Sample(0.0, "a", 10.0, (2.0, 3.0, 2.5, 5.0)),
        Sample(0.1, "a", 12.0, (3.0, 4.0, 3.5, 5.0)),
        Sample(0.2, "b", 30.0, (20.0, 5.0, 4.5, 5.0)),
        Sample(0.3, "b", 9.0, None),  # a result whose worker did not say when it read it
    ]
    assert hops_p50(window) == {"to_worker": 3.0, "in_worker": 4.0, "model": 3.5, "to_redis": 5.0}
    assert hops_p50(window[3:]) is None, "too few to say"
    assert percentiles([1.0]) == {"p50": None, "p90": None, "p99": None}
    assert percentiles([float(i) for i in range(1, 102)])["p50"] == 51.0
