"""The camera benchmark runs end to end (figures are checked by running the benchmark, not here)."""

from __future__ import annotations

import pytest

from streamsense.services.bench import produce_camera
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.settings import StreamsenseSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_camera_benchmark_compares_the_kafka_path_with_the_bare_loop(
    settings: StreamsenseSettings,
) -> None:
    s = CameraProducerSettings(kafka_bootstrap=settings.kafka_bootstrap, service_name="bench-test")
    result = produce_camera.run(s, frames=40, rounds=1, video_seconds=2.0)
    assert result["ours_fps"] > 0 and result["bare_fps"] > 0
    assert result["ratio"] == pytest.approx(result["ours_fps"] / result["bare_fps"], rel=0.01)
    assert (result["width"], result["height"], result["jpeg_quality"]) == (1280, 720, 80)
    assert result["ours_dropped"][0] < 40
    assert 10_000 < result["mean_jpeg_bytes"] < 500_000
