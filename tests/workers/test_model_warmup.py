"""A model whose warmup fails or never returns, at a worker's start and before a hot swap.

Before, a warmup that hung kept the worker in "starting" for ever without a word, a hung new
version kept its loader thread for ever without being rejected, and a warmup that raised a
runtime error (e.g. cuDNN) ended the start with a traceback instead of one line naming the
model. The real sentiment model of the zoo serves; the fault is injected at its warmup."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from streamsense.models.base import ModelAdapter
from streamsense.models.exceptions import ModelError
from streamsense.models.store import ModelStore
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.model_call import ModelHungError
from streamsense.services.workers.settings import WorkerSettings
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.models]


class BadWarmup:
    """The real adapter, except that its warmup hangs (``hang``) or raises (``fail``)."""

    def __init__(self, inner: ModelAdapter[Any, Any], mode: str) -> None:
        self.inner = inner
        self.mode = mode
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def warmup(self) -> None:
        self.inner.load()
        if self.mode == "hang":
            self.release.wait(120)
        else:
            raise RuntimeError("Could not create cuDNN handle: CUDNN_STATUS_INTERNAL_ERROR")


class FaultyStore(ModelStore):
    """The zoo's store; the versions named in ``faults`` come with a bad warmup."""

    def __init__(self, root: Path, faults: dict[str, str]) -> None:
        super().__init__(root)
        self.faults = faults
        self.made: list[BadWarmup] = []

    def load(self, name: str, version: str | None = None) -> ModelAdapter[Any, Any]:
        adapter = super().load(name, version)
        mode = self.faults.get(adapter.version)
        if mode is None:
            return adapter
        bad = BadWarmup(adapter, mode)
        self.made.append(bad)
        return bad  # type: ignore[return-value]

    def load_serving(self, name: str) -> tuple[ModelAdapter[Any, Any], str | None]:
        adapter, fallback = super().load_serving(name)
        return self.load(name, adapter.version), fallback


def _settings(env: dict[str, object], **extra: Any) -> WorkerSettings:
    return WorkerSettings(task="sentiment", service_name="t-warm", **env, **extra)  # type: ignore[arg-type]


def _serving(env: dict[str, object]) -> tuple[str, str]:
    """The name and version a sentiment worker serves by default."""
    name, _ = _settings(env).model_spec
    adapter, _ = ModelStore(Path(str(env["model_store"]))).load_serving(name)
    return name, adapter.version


@pytest.mark.parametrize("mode", ["hang", "fail"])
def test_a_worker_whose_model_warmup_hangs_or_fails_stops_with_the_reason(
    sentiment_env: dict[str, object], mode: str
) -> None:
    root = Path(str(sentiment_env["model_store"]))
    name, version = _serving(sentiment_env)
    store = FaultyStore(root, {version: mode})
    s = _settings(sentiment_env, worker_warmup_timeout_s=1)
    started = time.monotonic()
    try:
        with pytest.raises(ModelError if mode == "fail" else ModelHungError) as info:
            build_worker(s, store)
    finally:
        for bad in store.made:
            bad.release.set()
    took = time.monotonic() - started
    msg = str(info.value)
    assert msg.startswith(f"{name}@{version}: its warmup"), msg
    if mode == "hang":
        assert "did not return in 1 s" in msg and "STREAMSENSE_WORKER_WARMUP_TIMEOUT_S" in msg
        assert took < 30, f"gave up after {took:.1f} s"
    else:
        assert "warmup" in msg and "CUDNN_STATUS_INTERNAL_ERROR" in msg


def test_a_new_version_whose_warmup_hangs_is_rejected_and_the_old_one_keeps_serving(
    sentiment_env: dict[str, object],
) -> None:
    root = Path(str(sentiment_env["model_store"]))
    store = ModelStore(root)
    name, serving = _serving(sentiment_env)
    _, handler = build_worker(_settings(sentiment_env, worker_warmup_timeout_s=1), store)
    slot = handler.slot
    rejected: list[tuple[str, str, BaseException]] = []
    slot.on_rejected = lambda n, v, exc: rejected.append((n, v, exc))
    bad = BadWarmup(store.load(name, serving), "hang")
    slot._loader = lambda _n, _v: bad  # type: ignore[assignment,return-value]
    try:
        slot.offer(name, "hung")
        wait_for(lambda: rejected, 30, "the hung version to be rejected")
    finally:
        bad.release.set()
    assert rejected[0][:2] == (name, "hung")
    exc = rejected[0][2]
    assert isinstance(exc, ModelHungError) and "did not return in 1 s" in str(exc)
    assert not slot.swap_if_ready()
    assert slot.ref == (name, serving)
    assert slot.current.predict_batch(["a fine day"])[0] is not None
