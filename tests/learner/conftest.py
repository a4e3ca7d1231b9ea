"""The drift scenario, built once per session: an airline-only champion in a template store."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamsense.models.store import ModelStore
from streamsense.services.bench.learning import provision
from streamsense.services.learner.drifted import (
    DriftedStream,
    make_stream,
    store_champion,
    train_champion,
)
from streamsense.services.settings import StreamsenseSettings, default_home

MODEL = "sentiment-drift"


@dataclass(frozen=True)
class Drift:
    stream: DriftedStream
    template: Path  # a store whose champion is MODEL@1

    def store(self, tmp_path: Path) -> ModelStore:
        """A private copy of the template store (tests change champions)."""
        root = tmp_path / "store"
        shutil.copytree(self.template, root)
        return ModelStore(root)


@pytest.fixture(scope="session")
def drift(tmp_path_factory: pytest.TempPathFactory) -> Drift:
    stream = make_stream(default_home() / "downloads")
    root = tmp_path_factory.mktemp("drift")
    store = ModelStore(root / "store")
    store_champion(store, MODEL, train_champion(stream.train_texts, stream.train_labels), root)
    return Drift(stream, store.root)


@pytest.fixture
def prefixed(stack: dict[str, str]) -> Callable[[], StreamsenseSettings]:
    """Settings with a fresh topic prefix whose learning topics exist."""

    def make() -> StreamsenseSettings:
        s = StreamsenseSettings(
            kafka_bootstrap=stack["bootstrap"], topic_prefix=f"l{uuid.uuid4().hex[:8]}."
        )
        provision(s)
        return s

    return make
