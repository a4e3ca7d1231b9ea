"""The model a worker serves, and a swap to a new version between batches.

A new version is loaded and warmed in a background thread; ``swap_if_ready`` (called by the
loop between batches) puts it in service, so serving never pauses for more than one batch.

The last version offered wins, whatever order the loads finish in: a version that finishes
loading after a newer one was announced (a slow load overtaken, or a rollback to the version
serving) is dropped, never swapped in over it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from streamsense.models.base import ModelAdapter
from streamsense.services import heap
from streamsense.services.workers.model_call import warm

log = logging.getLogger(__name__)

Loader = Callable[[str, str | None], ModelAdapter[Any, Any]]


class ModelSlot:
    def __init__(
        self, adapter: ModelAdapter[Any, Any], loader: Loader, warmup_timeout_s: float = 600.0
    ) -> None:
        self.current = adapter
        self.warmup_timeout_s = warmup_timeout_s
        self._loader = loader
        self._ready: ModelAdapter[Any, Any] | None = None
        self._lock = threading.Lock()
        self._wanted: tuple[str, str] | None = None  # the last version offered
        self._loading: set[tuple[str, str]] = set()
        self.last_swap_gap_ms: float | None = None
        self.on_rejected: Callable[[str, str, BaseException], None] | None = None
        #: why the last version offered was rejected, while the previous one keeps serving
        self.rejected: str | None = None

    @property
    def ref(self) -> tuple[str, str]:
        return self.current.name, self.current.version

    def offer(self, name: str, version: str) -> None:
        """Load, verify and warm ``name@version`` in the background; swap when ready. The
        version serving cancels a swap still pending (a rollback)."""
        wanted = (name, version)
        with self._lock:
            self._wanted = wanted
            self.rejected = None
            pending = self._ready
            if pending is not None and (pending.name, pending.version) != wanted:
                self._ready = pending = None  # overtaken before it was swapped in
            if wanted == self.ref or pending is not None or wanted in self._loading:
                return
            self._loading.add(wanted)
        t = threading.Thread(
            target=self._load, args=(name, version), daemon=True, name=f"load-{name}-{version}"
        )
        t.start()

    def _load(self, name: str, version: str) -> None:
        try:
            adapter = self._loader(name, version)
            warm(adapter, self.warmup_timeout_s)
        except Exception as exc:  # a broken version must never stop serving
            log.error(
                "model %s@%s rejected, %s@%s keeps serving: %s", name, version, *self.ref, exc
            )
            with self._lock:
                self._loading.discard((name, version))
                if self._wanted == (name, version):
                    self.rejected = f"{name}@{version}: {type(exc).__name__}: {exc}"[:500]
            if self.on_rejected is not None:
                self.on_rejected(name, version, exc)
            return
        with self._lock:
            self._loading.discard((name, version))
            if self._wanted != (name, version):
                log.warning("model %s@%s loaded, but %s@%s was announced meanwhile: not swapped "
                            "in", name, version, *(self._wanted or self.ref))  # fmt: skip
                return
            self._ready = adapter
        log.info(
            "model %s@%s loaded and warmed; swapping at the next batch boundary", name, version
        )

    def swap_if_ready(self) -> bool:
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is None:
            return False
        t0 = time.perf_counter()
        old, self.current = self.current, ready
        self.last_swap_gap_ms = (time.perf_counter() - t0) * 1000
        log.info("now serving %s@%s (was %s@%s)", ready.name, ready.version, old.name, old.version)
        del old
        took = heap.refreeze()  # reclaim the old model (a frozen heap would keep it)
        if took is not None:
            log.info("old model released; heap collected and frozen again in %.0f ms", took)
        return True
