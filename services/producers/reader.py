"""A camera's reader thread: open, read at the right pace, hand frames to the encoders, and
reconnect a lost live source with a capped backoff.

OpenCV's ``read`` blocks (up to the read timeout on a stalled stream) while it holds no GIL,
so each camera has its own reader thread; everything heavier than reading runs in the shared
encoder threads (:mod:`~streamsense.services.producers.sender`).
"""

from __future__ import annotations

import logging
import threading
import time

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential,
)

from streamsense.services.producers.camera_state import Camera
from streamsense.services.producers.exceptions import SourceError, SourceLostError
from streamsense.services.producers.handoff import RawFrame
from streamsense.services.producers.pacing import Pacer

log = logging.getLogger(__name__)

#: Failed reconnection attempts logged one by one; after them, one line in this many.
_LOG_FIRST, _LOG_EVERY = 3, 30


class CameraReader:
    def __init__(self, camera: Camera, stop: threading.Event, pace: bool = True) -> None:
        self.camera = camera
        self.source = camera.source
        self.stop = stop
        self.pace = pace
        #: frames handed to the encoders (``max_frames`` counts these)
        self.taken = 0

    def run(self) -> None:
        """The thread's body: never raises; how it ended is in the camera (state, error)."""
        cam = self.camera
        try:
            reason = self._run()
            if (damage := self.source.damage) is not None:  # the rest was sent: say what was not
                raise SourceError(damage)
            cam.set_state("offline", reason)
        except SourceError as exc:  # SourceLostError too: given up
            cam.error = exc
            cam.set_state("offline", str(exc))
        except Exception as exc:
            log.exception("camera %s: reader failed", cam.camera_id)
            cam.error = exc
            cam.set_state("offline", f"reader failed: {type(exc).__name__}: {exc}")
        finally:
            self.source.close()
            cam.finished = True

    def _run(self) -> str:
        cam, source = self.camera, self.source
        if not source.is_open:
            if source.live:
                self._connect(first=True)
            else:
                source.open()  # a finite source that cannot be read is not retried
        if self.stop.is_set():
            return "stopped"
        cam.set_state("online")
        fps = cam.target_fps if self.pace else None
        pacer = Pacer(fps)
        pace = f"{fps:g} fps" if fps else "source pace" if source.live else "full speed"
        log.info("camera %s: %s at %s", cam.camera_id, source.description, pace)
        limit = cam.spec.max_frames
        while not self.stop.is_set():
            if limit is not None and self.taken >= limit:
                return f"{limit} frames taken (max_frames)"
            if not source.live:
                pacer.wait(self.stop)
                if self.stop.is_set():
                    break
            image = source.read()
            if image is None:
                if source.live:
                    self._connect(first=False)
                    if not self.stop.is_set():
                        cam.set_state("online")
                    continue
                if not cam.spec.loop:
                    return "the source ended"
                source.close()
                source.open()
                cam.stats.loops += 1
                continue
            capture_ns = time.time_ns()
            cam.stats.read += 1
            if source.live and not pacer.take():
                cam.stats.skipped += 1
                continue
            if not cam.slot.put(RawFrame(image, capture_ns), self.stop) and not self.stop.is_set():
                cam.stats.behind += 1
            self.taken += 1
        return "stopped"

    def _wait(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def _connect(self, first: bool) -> None:
        """Open a live source (again), with the camera's backoff; SourceLostError when its
        attempts run out. A stop request ends the wait at once."""
        cam, policy = self.camera, self.camera.spec.reconnect
        what = self.source.description
        lost_at = time.monotonic()
        if not first:
            self.source.close()
            cam.set_state("reconnecting", f"{what} lost")
            if policy.attempts == 0:
                msg = f"{what} was lost (reconnect attempts: 0)"
                raise SourceLostError(msg)
        failures = 0

        def _failed(state: RetryCallState) -> None:
            nonlocal failures
            failures += 1
            wait = state.next_action.sleep if state.next_action else 0.0
            exc = state.outcome.exception() if state.outcome else None
            cam.set_state("reconnecting", f"{'not reached yet' if first else 'lost'}: {exc}")
            if failures <= _LOG_FIRST or failures % _LOG_EVERY == 0:
                log.warning("camera %s: attempt %d to open %s failed (%s); next in %.1f s",
                            cam.camera_id, failures, what, exc, wait)  # fmt: skip

        attempts = policy.attempts
        retrying = Retrying(
            stop=stop_after_attempt(attempts) if attempts is not None else stop_never,
            wait=wait_exponential(multiplier=policy.initial_s, max=policy.max_s),
            retry=retry_if_exception_type(SourceError),
            sleep=self._wait,
            before_sleep=_failed,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if self.stop.is_set():
                        return
                    self.source.open()
        except SourceError as exc:
            how = "not reached in" if first else "lost and not back after"
            msg = f"{what} {how} {attempts} attempts: {exc}"
            raise SourceLostError(msg) from exc
        if not first and not self.stop.is_set():
            cam.stats.reconnects += 1
            log.info("camera %s: %s is back after %.1f s", cam.camera_id, what,
                     time.monotonic() - lost_at)  # fmt: skip
