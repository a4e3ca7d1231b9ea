"""A service's heap is frozen once it is built (full collections skip the imports and the
model: 117 ms each for the sentiment worker), and a model swapped out for a new version is
still reclaimed: a frozen object in a reference cycle is never collected otherwise."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from streamsense.services import heap
from streamsense.services.workers.slot import ModelSlot
from tests.conftest import wait_for


class CyclicModel:
    """Stands in for a loaded model: full of reference cycles, as Keras models are."""

    def __init__(self, version: str) -> None:
        self.name, self.version = "m", version
        self.layers: list[Any] = [self, {"owner": self}]

    def load(self) -> None: ...

    def warmup(self) -> None: ...


def test_a_frozen_heap_still_reclaims_a_swapped_out_model() -> None:
    assert heap.refreeze() is None, "nothing to do before a service froze its heap"
    old = CyclicModel("1")
    gone = weakref.ref(old)
    slot = ModelSlot(old, lambda _n, v: CyclicModel(v or "?"))  # type: ignore[arg-type,return-value]
    del old
    heap.freeze()
    try:
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert gone() is not None, "still serving"
        slot.offer("m", "2")
        wait_for(slot.swap_if_ready, 10, "version 2 swapped in")
        assert slot.ref == ("m", "2")
        assert gone() is None, "the old model was reclaimed although its heap was frozen"
        assert gc.get_freeze_count() > 0, "and the heap is frozen again"
    finally:
        gc.unfreeze()
