"""Versions announced in quick succession: the last one announced serves, whatever order their
loads finish in, and a version that cannot serve is said so in health while the old one serves.

Before, each announcement started a load and whichever finished last was swapped in: a slow
version 2 overtaken by version 3, or rolled back to version 1 while it loaded, replaced the
version announced after it, and stayed (no later announcement came to undo it).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from streamsense.models.store import ModelStore
from streamsense.services.workers.app import build_worker
from streamsense.services.workers.settings import WorkerSettings
from streamsense.services.workers.slot import ModelSlot
from tests.conftest import wait_for


class Version:
    """A loaded model version (the slot only names, warms and swaps it)."""

    def __init__(self, version: str) -> None:
        self.name, self.version = "m", version

    def warmup(self) -> None: ...


class GatedLoader:
    """Loads any version at once, except those in ``gates``, which wait for their event."""

    def __init__(self, *slow: str) -> None:
        self.gates = {v: threading.Event() for v in slow}
        self.loaded: list[str] = []

    def __call__(self, _name: str, version: str | None) -> Version:
        assert version is not None
        if version in self.gates:
            assert self.gates[version].wait(30)
        self.loaded.append(version)
        return Version(version)


def _slot(loader: GatedLoader) -> ModelSlot:
    return ModelSlot(Version("1"), loader)  # type: ignore[arg-type]


def _settle(slot: ModelSlot, loader: GatedLoader, n: int) -> None:
    """Wait until ``n`` loads finished, then give a swap every chance to happen."""
    wait_for(lambda: len(loader.loaded) >= n, 10, f"{n} loads")
    loading = lambda: [t for t in threading.enumerate() if t.name.startswith("load-m-")]  # noqa: E731
    wait_for(lambda: not loading(), 10, "the loader threads to finish")
    slot.swap_if_ready()


def test_a_slow_version_overtaken_by_a_newer_one_is_never_swapped_in() -> None:
    loader = GatedLoader("2")
    slot = _slot(loader)
    slot.offer("m", "2")
    slot.offer("m", "3")
    wait_for(slot.swap_if_ready, 10, "version 3 swapped in")
    assert slot.ref == ("m", "3")
    loader.gates["2"].set()
    _settle(slot, loader, 2)
    assert slot.ref == ("m", "3"), "the version announced last serves"


@pytest.mark.parametrize("pending", ["loading", "loaded"])
def test_a_rollback_to_the_serving_version_cancels_the_swap_in_flight(pending: str) -> None:
    loader = GatedLoader("2")
    slot = _slot(loader)
    slot.offer("m", "2")
    if pending == "loaded":  # loaded and warmed, waiting for the batch boundary
        loader.gates["2"].set()
        wait_for(lambda: loader.loaded == ["2"], 10, "version 2 loaded")
        time.sleep(0.2)  # and warmed (nothing to warm): ready for the next batch boundary
    slot.offer("m", "1")  # rolled back: version 1 is the champion again
    loader.gates["2"].set()
    _settle(slot, loader, 1)
    assert slot.ref == ("m", "1")
    assert not slot.swap_if_ready()


def test_an_announcement_repeated_while_it_loads_loads_it_once() -> None:
    loader = GatedLoader("2")
    slot = _slot(loader)
    for _ in range(3):
        slot.offer("m", "2")
    loader.gates["2"].set()
    wait_for(slot.swap_if_ready, 10, "version 2 swapped in")
    _settle(slot, loader, 1)
    assert loader.loaded == ["2"] and slot.ref == ("m", "2")


@pytest.mark.integration
@pytest.mark.models
def test_health_says_which_announced_version_was_rejected_and_what_serves(
    sentiment_env: dict[str, object], tmp_path: Path
) -> None:
    zoo = ModelStore(Path(str(sentiment_env["model_store"])))
    s = WorkerSettings(task="sentiment", service_name="t-races", **{**sentiment_env,
                       "model_store": tmp_path / "store"})  # type: ignore[arg-type]  # fmt: skip
    name, _ = s.model_spec
    adapter, _ = zoo.load_serving(name)
    store = ModelStore(tmp_path / "store")
    card = zoo.card(name, adapter.version)
    for v in ("1", "2"):
        store.put(name, v, adapter.artifact, card.model_copy(update={"version": v}))
    store.set_champion(name, "1")
    artifact = store.artifact_path(name, "2")
    artifact.chmod(0o644)
    with artifact.open("ab") as fh:  # version 2 is corrupted after it was stored
        fh.write(b"tampered")
    _, handler = build_worker(s, store)
    handler.slot.offer(name, "2")
    wait_for(lambda: handler.slot.rejected is not None, 60, "version 2 to be rejected")
    assert not handler.slot.swap_if_ready()
    ok, detail = handler.health()
    assert ok, "version 1 still serves"
    assert detail["model"] == f"{name}@1"
    rejected = detail["model_rejected"]
    assert f"{name}@2: ModelIntegrityError" in rejected and "sha256" in rejected
    assert f"{name}@1 keeps serving" in rejected
    handler.slot.offer(name, "1")  # a rollback announced: nothing is wrong any more
    assert "model_rejected" not in handler.health()[1]
    handler.close()
