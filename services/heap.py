"""Keeping Python's cycle collector off a service's long-lived heap.

A worker with TensorFlow and its model loaded holds about 330,000 objects, and a full
collection scans them all while every thread waits: 117 ms for the sentiment worker on the
2-core test machine. Full collections come every few seconds under a steady stream, so they
made the p99 of a 200 lines/s stream (about 100 ms, lines waiting for the worker to read them).

What is alive once a service is built (imports, the loaded model) lives as long as the
process, so :func:`freeze` moves it out of the collector's sight (``gc.freeze``), and later
collections scan only what came after. A model swapped out for a new version must still be
reclaimed (it is full of reference cycles): :func:`refreeze` thaws the heap, collects once,
and freezes what is left.
"""

from __future__ import annotations

import gc
import time


def freeze() -> None:
    """Collect, then freeze every object alive now (once the service is built, before it runs)."""
    gc.collect()
    gc.freeze()


def refreeze() -> float | None:
    """After long-lived objects were dropped (a swapped-out model): thaw, collect, freeze
    again; the milliseconds it took, or None when the heap was not frozen (nothing to do)."""
    if not gc.get_freeze_count():
        return None
    start = time.perf_counter()
    gc.unfreeze()
    freeze()
    return (time.perf_counter() - start) * 1000
