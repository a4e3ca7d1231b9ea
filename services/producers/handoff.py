"""The hand-off of frames from a camera's reader thread to the shared encoder threads.

One frame waits per camera. A live source (stream, device) must be read at its own pace or
frames pile up in FFmpeg's and the network's buffers and everything sent is late, so its
reader never waits: a frame that arrives while the previous one still waits replaces it (the
newest frame wins; the replaced one is counted as ``behind``). A finite source (file, folder)
sets its own pace, so its reader waits for the slot instead and no frame is lost.

Each camera is queued for the encoders at most once at a time and handled by one encoder at a
time ("claimed"), so its frames are encoded, numbered and produced in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from streamsense.services.producers.base import Image


@dataclass(slots=True)
class RawFrame:
    image: Image
    capture_ns: int


class FrameSlot:
    def __init__(self, lossless: bool, ready: Callable[[], None] = lambda: None) -> None:
        self.lossless = lossless
        #: queues the camera for an encoder (set by the sender that serves it)
        self.ready = ready
        self._cond = threading.Condition()
        self._frame: RawFrame | None = None
        self._claimed = False  # queued for an encoder, or being encoded

    def put(self, frame: RawFrame, stop: threading.Event) -> bool:
        """Hand ``frame`` over; False when it replaced a waiting frame (or, lossless, when the
        wait for the slot was cut short by ``stop``: the frame is not sent)."""
        with self._cond:
            if self._frame is not None:
                if not self.lossless:
                    self._frame = frame
                    return False
                while self._frame is not None and not stop.is_set():
                    self._cond.wait(0.1)
                if self._frame is not None:
                    return False
            self._frame = frame
            schedule = not self._claimed
            self._claimed = True
        if schedule:
            self.ready()
        return True

    def take(self) -> RawFrame | None:
        """The waiting frame, for the encoder that holds the claim."""
        with self._cond:
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def release(self) -> None:
        """The encoder is done: queue the camera again if a frame arrived meanwhile."""
        with self._cond:
            again = self._frame is not None
            self._claimed = again
        if again:
            self.ready()

    @property
    def idle(self) -> bool:
        """No frame waits and no encoder holds the camera."""
        with self._cond:
            return self._frame is None and not self._claimed
