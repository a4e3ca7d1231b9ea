"""Model calls on a thread of their own, so that a call that never returns cannot hold the
worker hostage.

The loop's thread waits for each call. A call running longer than the worker's model timeout
turns health red (the partitions behind it stall until ``max.poll.interval.ms`` hands them to
another member). Once the worker is asked to stop, it waits for a running call only until that
call reaches the timeout, then gives up with :class:`ModelHungError`: the loop commits what
finished before and exits, the batch stays uncommitted and is read again by the next owner.
Without this a SIGTERM waited for ever (the signal cannot interrupt a call inside the model).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from streamsense.models.base import ModelAdapter
from streamsense.models.exceptions import ModelError
from streamsense.services.exceptions import StreamsenseError
from streamsense.services.kafka.exceptions import FatalHandlerError

T = TypeVar("T")

log = logging.getLogger(__name__)

#: How often a waiting loop thread looks whether it was asked to stop (a result wakes it at once).
_LOOK_S = 0.2

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class ModelHungError(FatalHandlerError):
    """A model call did not return within the model timeout after the worker was asked to stop."""


class ModelCaller:
    def __init__(self, timeout_s: float, name: str = "model") -> None:
        self.timeout_s = timeout_s
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._since: float | None = None  # monotonic start of the running call
        self._hung: str | None = None
        # a daemon: a call stuck in the model must not keep the process alive at exit
        self._thread = threading.Thread(target=self._serve, daemon=True, name=name)
        self._thread.start()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the model thread: its result, or what it raised."""
        if self._hung is not None:
            raise ModelHungError(self._hung)
        done: Future[T] = Future()
        start = time.monotonic()
        self._jobs.put((done, fn, args))
        while True:
            try:
                return done.result(_LOOK_S)
            except TimeoutError:
                pass
            took = time.monotonic() - start
            if self._stopping.is_set() and took >= self.timeout_s:
                self._hung = (
                    f"a model call did not return in {took:.0f} s (the model timeout is "
                    f"{self.timeout_s:g} s, STREAMSENSE_WORKER_MODEL_TIMEOUT_S); stopping without "
                    "it: its batch is not committed and is read again"
                )
                raise ModelHungError(self._hung)

    def running_for(self) -> float:
        """How long the running call has run (0 when none runs)."""
        since = self._since
        return 0.0 if since is None else time.monotonic() - since

    def stop(self) -> None:
        """The worker is stopping: a call past the timeout is given up (any thread)."""
        self._stopping.set()

    def close(self) -> None:
        """The thread ends after its current call; never waits for it."""
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            done, fn, args = job
            if not done.set_running_or_notify_cancel():
                continue
            self._since = time.monotonic()
            try:
                done.set_result(fn(*args))
            except BaseException as exc:  # handed to the waiting caller  # noqa: BLE001
                done.set_exception(exc)
            finally:
                self._since = None


def warm(adapter: ModelAdapter[Any, Any], timeout_s: float) -> None:
    """Load ``adapter`` and run it once per batch size on its sample input, on a thread of its
    own, within ``timeout_s``. A warmup that fails is a :class:`ModelError` naming the model
    (a model that cannot serve its own sample input must not serve); one that does not return
    is a :class:`ModelHungError` (its thread is left behind: a call inside the model cannot be
    interrupted)."""
    ref = f"{adapter.name}@{adapter.version}"
    done: Future[None] = Future()

    def target() -> None:
        try:
            adapter.warmup()
            done.set_result(None)
        except BaseException as exc:  # handed to the waiting caller  # noqa: BLE001
            done.set_exception(exc)

    log.info("warming %s: one call per batch size on its sample input", ref)
    start = time.monotonic()
    threading.Thread(target=target, daemon=True, name=f"warm-{ref}").start()
    try:
        done.result(timeout_s)
    except TimeoutError:
        msg = (
            f"{ref}: its warmup (one call per batch size on its sample input) did not return in "
            f"{timeout_s:g} s (STREAMSENSE_WORKER_WARMUP_TIMEOUT_S): the model or its device "
            "hangs"
        )
        raise ModelHungError(msg) from None
    except StreamsenseError:
        raise
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
        msg = f"{ref}: its warmup (a call on its own sample input) failed: {why}"
        raise ModelError(msg) from exc
    log.info("%s warmed in %.1f s", ref, time.monotonic() - start)
