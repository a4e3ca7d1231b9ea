"""Model safety against the real CLI, store, broker and worker: a SavedModel whose graph reads a
system file and writes one of its own is refused by ``models register`` and by the loader
without running (``--allow-unsafe-ops`` accepts it and the card records why); a worker offered
it as champion keeps serving; a worker whose champion is corrupt falls back to the newest
version that loads and says so in its health."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from streamsense.models.digest import artifact_sha256
from streamsense.models.exceptions import UnsafeModelError
from streamsense.models.register import register_saved_model
from streamsense.models.store import ModelStore
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.registry import decode
from streamsense.schemas.results import DetectionResult
from streamsense.services.bench import poison
from streamsense.services.kafka.model_updates import announce
from streamsense.services.kafka.producer import Producer
from streamsense.services.kafka.topics import ensure_topics
from streamsense.services.runner import running
from streamsense.services.settings import StreamsenseSettings
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.settings import WorkerSettings
from tests.conftest import wait_for
from tests.kafka_helpers import read_all
from tests.reliability.conftest import REPO
from tests.reliability.test_bad_input import GOOD_JPEG

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Boxes(tf.Module):
    """A tiny detector with the TF2 Object Detection API's outputs: one box, score 0.9."""

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        n = tf.shape(images)[0]
        return {
            "detection_boxes": tf.tile(tf.constant([[[0.1, 0.1, 0.5, 0.5]]]), [n, 1, 1]),
            "detection_scores": tf.fill([n, 1], 0.9),
            "detection_classes": tf.ones([n, 1]),
        }


def _safe(path: Path) -> Path:
    module = Boxes()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def _register_cli(store: Path, model: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    args = ["models", "register", str(model), "--name", "evil", "--task", "detect", *extra]
    return subprocess.run(
        [sys.executable, "-m", "streamsense.services.cli", *args, "--store", str(store)],
        cwd=REPO, capture_output=True, timeout=180, check=False, env=dict(os.environ),
    )  # fmt: skip


def test_register_refuses_an_unsafe_saved_model_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "written-by-the-model"
    model = poison.unsafe_saved_model(tmp_path / "evil", marker)
    store = tmp_path / "store"

    res = _register_cli(store, model)
    stderr = res.stderr.decode()
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert res.returncode == 1, stderr
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    assert "ReadFile (reads or writes files)" in errors[0] and "WriteFile" in errors[0]
    assert "--allow-unsafe-ops" in errors[0]
    assert not marker.exists(), "the graph never ran"
    assert ModelStore(store).list() == []

    res = _register_cli(store, model, "--allow-unsafe-ops")
    assert res.returncode == 0, res.stderr.decode()
    card = ModelStore(store).card("evil", "1")
    assert card.allow_unsafe_ops
    assert any(u.startswith("ReadFile") for u in card.unsafe_ops)
    assert any(u.startswith("WriteFile") for u in card.unsafe_ops)


def test_the_loader_refuses_an_unsafe_version_whose_card_does_not_allow_it(tmp_path: Path) -> None:
    marker = tmp_path / "written-by-the-model"
    model = poison.unsafe_saved_model(tmp_path / "evil", marker)
    store = ModelStore(tmp_path / "store")
    card = register_saved_model(store, model, name="evil", task="detect", allow_unsafe_ops=True)
    marker.unlink()  # the smoke test ran it, as the user allowed
    # the same artifact with a card that allows nothing (copied in behind register's back)
    store.put("evil", "2", model, card.model_copy(update={"version": "2",
                                                         "allow_unsafe_ops": False}))  # fmt: skip
    with pytest.raises(UnsafeModelError, match="WriteFile"):
        store.load("evil", "2")
    assert not marker.exists()
    store.load("evil", "1").predict_batch([np.zeros((32, 32, 3), np.uint8)])
    assert marker.exists(), "allowed by its card, it runs"


def _detector_store(root: Path, marker: Path) -> ModelStore:
    """``boxes`` 1 (safe), 2 (unsafe, not allowed), 3 (safe, then corrupted)."""
    store = ModelStore(root)
    safe = _safe(root.parent / "safe")
    card = register_saved_model(store, safe, name="boxes", task="detect", version="1")
    evil = poison.unsafe_saved_model(root.parent / "evil", marker)
    evil_card = card.model_copy(update={"version": "2", "sha256": artifact_sha256(evil)})
    store.put("boxes", "2", evil, evil_card)
    store.put("boxes", "3", safe, card.model_copy(update={"version": "3"}))
    return store


def _frame_results(settings: WorkerSettings, n: int) -> list[DetectionResult]:
    p = Producer(settings)
    headers = poison.frame_headers("cam", 0, 160, 120)
    p.produce(settings.input_topic, GOOD_JPEG, "cam", headers)
    assert p.flush(30) == 0
    p.close(5)
    got = read_all(settings.kafka_bootstrap, settings.output_topic, n, 60)
    return [decode(m.value(), DetectionResult) for m in got]  # type: ignore[misc]


def test_a_worker_offered_an_unsafe_champion_keeps_serving(
    stack: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "written-by-the-model"
    store = _detector_store(tmp_path / "store", marker)
    store.set_champion("boxes", "1")
    base = StreamsenseSettings(kafka_bootstrap=stack["bootstrap"],
                               topic_prefix=f"u{uuid.uuid4().hex[:8]}.")  # fmt: skip
    ensure_topics(base)
    settings = WorkerSettings(task="detect", worker_model="boxes", service_name="worker-u",
                              kafka_bootstrap=base.kafka_bootstrap, topic_prefix=base.topic_prefix,
                              model_store=store.root, worker_max_frame_age_ms=0)  # fmt: skip
    loop, handler = build_worker(settings, check_topics=True)
    with running(loop):
        wait_for(lambda: loop.assignment, 60, "partitions")
        assert [r.model.version for r in _frame_results(settings, 1)] == ["1"]
        card = store.card("boxes", "2")
        offer = ModelVersion(
            name="boxes", model_version="2", task="detect", uri="store", sha256=card.sha256,
            stage="champion", created_ns=time.time_ns(),
        )  # fmt: skip
        announce(Producer(base), base, offer, wait_s=10)
        updates = base.topic("models.updates")
        wait_for(lambda: any(decode(m.value(), ModelVersion).stage == "rejected"
                             for m in read_all(base.kafka_bootstrap, updates, 2, 2)), 60,
                 "the worker's rejection")  # fmt: skip
        rejected = [
            decode(m.value(), ModelVersion) for m in read_all(base.kafka_bootstrap, updates, 2, 5)
        ][-1]
        assert "UnsafeModelError" in (rejected.reason or "") and "WriteFile" in (
            rejected.reason or ""
        )
        versions = [r.model.version for r in _frame_results(settings, 2)]
        assert versions == ["1", "1"], "still the safe version"
        ok, detail = loop.health()
        assert ok and detail["model"] == "boxes@1"
    assert not marker.exists()


def test_a_corrupt_champion_falls_back_to_the_newest_version_that_loads(
    stack: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "written-by-the-model"
    store = _detector_store(tmp_path / "store", marker)
    store.set_champion("boxes", "3")
    weights = next((store.artifact_path("boxes", "3") / "variables").glob("*.index"), None)
    target = weights or store.artifact_path("boxes", "3") / "saved_model.pb"
    target.write_bytes(target.read_bytes() + b"tampered")
    base = StreamsenseSettings(kafka_bootstrap=stack["bootstrap"],
                               topic_prefix=f"c{uuid.uuid4().hex[:8]}.")  # fmt: skip
    ensure_topics(base)
    settings = WorkerSettings(task="detect", worker_model="boxes", service_name="worker-c",
                              kafka_bootstrap=base.kafka_bootstrap, topic_prefix=base.topic_prefix,
                              model_store=store.root, worker_max_frame_age_ms=0,
                              worker_follow_updates=False)  # fmt: skip
    loop, _ = build_worker(settings)
    with running(loop):
        wait_for(lambda: loop.assignment, 60, "partitions")
        assert [r.model.version for r in _frame_results(settings, 1)] == ["1"]
        ok, detail = loop.health()
    assert ok, detail
    why = detail["model_fallback"]
    assert detail["model"] == "boxes@1"
    assert "champion boxes@3 cannot be loaded" in why and "sha256" in why and "serving 1" in why
    assert not marker.exists(), "version 2 (unsafe) was skipped without running"
    shutil.rmtree(tmp_path / "store")
