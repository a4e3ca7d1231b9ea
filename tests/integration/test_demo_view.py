"""The demo's live view counts results for inputs from before the demo apart from its p50
(a stack used before may hold a backlog the demo's workers read first); real broker."""

from __future__ import annotations

import time

import pytest

from streamsense.services.demo.live import ResultsView
from tests.conftest import wait_for
from tests.sink import factory

pytestmark = pytest.mark.integration


def test_a_backlog_is_counted_apart_and_kept_out_of_the_p50(
    stack: dict[str, str], request: pytest.FixtureRequest
) -> None:
    settings = factory.sink_settings(stack["bootstrap"], stack["redis_url"], request.node.name)
    view = ResultsView(settings)
    try:
        deadline = time.monotonic() + 30
        while not view._consumer.assignment() and time.monotonic() < deadline:  # noqa: SLF001
            view.poll(0.2)
        hours_ago = view.since_ns - 3 * 3600 * 10**9
        old = [factory.sentiment("app.log", i) for i in range(5)]
        old = [m.model_copy(update={"timings": factory._timings(hours_ago)}) for m in old]  # noqa: SLF001
        new = [factory.sentiment("app.log", 10 + i) for i in range(3)]
        factory.produce(settings, [factory.result_record(m) for m in old + new])

        def polled() -> bool:
            view.poll(0.2)
            return view.stats["sentiment"].count == 8

        wait_for(polled, 30, "8 results in the view")
        st = view.stats["sentiment"]
        assert st.backlog == 5 and len(st.latencies_ms) == 3
        assert max(st.latencies_ms) < 60_000, "the p50 is over the inputs of the demo only"
        assert "backlog" in [c.header for c in view.table().columns]
    finally:
        view.close()
