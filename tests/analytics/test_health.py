"""/healthz fails while an agent's outputs wait for acknowledgements too long."""

from __future__ import annotations

import time
from pathlib import Path

from streamsense.services.analytics.app import AnalyticsApp
from streamsense.services.analytics.rules import RuleSet
from streamsense.services.analytics.settings import AnalyticsSettings
from streamsense.services.analytics.status import STALLED_AFTER_S
from streamsense.services.analytics.topology import Layout


def test_outputs_unacknowledged_for_long_make_health_fail(tmp_path: Path) -> None:
    settings = AnalyticsSettings(kafka_bootstrap="127.0.0.1:1", home=tmp_path)
    app = AnalyticsApp(settings, RuleSet(), Layout(6, 3, 1))
    app.status.recovered = True
    assert app.health()[0] is True

    app.status.waiting["camera"] = time.monotonic() - 1.0  # an ordinary wait
    ok, detail = app.health()
    assert ok is True and "stalled" not in detail

    app.status.waiting["text"] = time.monotonic() - STALLED_AFTER_S - 2
    ok, detail = app.health()
    assert ok is False
    assert detail["stalled"].startswith("text outputs unacknowledged for 12 s")

    del app.status.waiting["text"]  # acknowledged at last
    assert app.health()[0] is True
