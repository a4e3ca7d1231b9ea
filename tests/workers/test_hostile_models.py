"""Models whose outputs are hostile, served by a real segment worker on the real broker.

Each model is a tiny SavedModel exported in the test and registered in a store of its own. A
result the model makes that cannot be published (larger than the results topic accepts) used to
fail the batch's transaction again and again: the partition stalled behind it for ever. Now the
input is a dead letter with the reason and the frames behind it are served.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.models.register import register_saved_model
from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import Topic
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.frames import FrameHeaders
from streamsense.schemas.registry import decode
from streamsense.schemas.results import SegmentResult
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import spec_of
from streamsense.services.runner import running
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.settings import WorkerSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all

pytestmark = [pytest.mark.integration, pytest.mark.models]


class Noise(tf.Module):
    """A segmenter of any input size whose mask is noise at full resolution: run-length
    encoding at its worst (a run every two pixels), and one that does not compress either."""

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="image")])
    def __call__(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        noise = tf.random.stateless_uniform(tf.shape(image)[:3], seed=(1, 2))
        return {"logits": (noise[..., None] - 0.5) * 20.0}


@pytest.fixture
def noise_env(stack: dict[str, str], tmp_path: Path) -> Iterator[dict[str, object]]:
    module = Noise()
    path = tmp_path / "noise"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    store = ModelStore(tmp_path / "store")
    register_saved_model(store, path, name="noise", task="segment", labels=["bg", "noise"])
    prefix = f"h{uuid.uuid4().hex[:8]}."
    # the results topic as deployed (its 1 MiB limit); the test broker allows 16 MiB otherwise
    results = spec_of(Topic.SEGMENTS)
    new = [NewTopic(prefix + n, num_partitions=1, replication_factor=1)
           for n in ("frames", "frames.dlq", "models.updates")]  # fmt: skip
    new.append(NewTopic(prefix + results.name, 1, 1, config=results.configs()))
    admin = AdminClient({"bootstrap.servers": stack["bootstrap"]})
    for fut in admin.create_topics(new).values():
        fut.result()
    yield {
        "kafka_bootstrap": stack["bootstrap"],
        "topic_prefix": prefix,
        "model_store": store.root,
        "worker_model": "noise",
        "worker_latency_budget_ms": 0,
    }


def _send(s: WorkerSettings, sizes: list[tuple[int, int]]) -> None:
    p = Producer(s)
    for seq, (w, h) in enumerate(sizes):
        ok, buf = cv2.imencode(".jpg", np.zeros((h, w, 3), np.uint8))
        assert ok
        headers = FrameHeaders(camera_id="cam", seq=seq, capture_ns=time.time_ns(), width=w,
                               height=h, trace_id=f"t{seq}")  # fmt: skip
        p.produce(s.topic("frames"), buf.tobytes(), key="cam", headers=headers.to_kafka_headers())
    assert p.flush(30) == 0


def test_a_result_too_large_for_its_topic_is_a_dead_letter_and_the_partition_moves_on(
    noise_env: dict[str, object],
) -> None:
    s = WorkerSettings(task="segment", service_name="t-hostile", worker_max_batch=1,
                       **noise_env)  # type: ignore[arg-type]  # fmt: skip
    # a 1440p noise mask is ~1.8 MB of RLE, over the results topic's 1 MiB; 64x64 is 3 KB
    _send(s, [(64, 64), (2560, 1440), (64, 48)])
    loop, _ = build_worker(s)
    with running(loop):
        raw = read_all(s.kafka_bootstrap, s.topic("results.segments"), 2, 60)
        print("SIZES", [len(m.value()) for m in raw])
        got = [decode(m.value()) for m in raw]
        dead = read_all(s.kafka_bootstrap, s.topic("frames.dlq"), 1, 30)
        wait_for(lambda: loop.processed >= 3, 30, "all 3 frames consumed")
        ok, detail = loop.health()
    assert ok, detail
    assert sorted(r.source.seq for r in got if isinstance(r, SegmentResult)) == [0, 2]
    assert len(dead) == 1
    info = DeadLetterInfo.from_kafka_headers(dead[0].headers())
    assert info.original_offset == 1
    assert info.error_class == "ModelOutputError"
    assert "over the 1047552 bytes its results topic" in info.error_message
