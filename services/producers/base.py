"""The frame-source interface: every camera input (video file, stream URL, device, image folder)
yields BGR images the same way, so the camera producer never knows which kind it reads."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy.typing as npt

#: A BGR ``uint8`` image as OpenCV returns it (HxWx3).
Image = npt.NDArray[Any]


class FrameSource(ABC):
    """A source of BGR frames.

    ``open`` raises :class:`~streamsense.services.producers.exceptions.SourceError` when the source
    cannot be read at all; ``read`` returns ``None`` at the end of a finite source or when a live
    source is lost (the producer then reconnects a ``live`` source with backoff, or stops/loops a
    finite one).
    """

    #: "file", "stream", "device" or "folder"
    kind: ClassVar[str]
    #: live sources (streams, devices) are reconnected when lost; finite ones end or loop
    live: ClassVar[bool] = False

    def __init__(self, description: str) -> None:
        self.description = description

    @abstractmethod
    def open(self) -> None:
        """Open (or reopen, after :meth:`close`) the source at its beginning."""

    @abstractmethod
    def read(self) -> Image | None:
        """The next frame, or ``None`` at the end / when the source is lost."""

    @property
    @abstractmethod
    def fps(self) -> float | None:
        """The source's own frame rate when it has one (files, streams), else ``None``."""

    @abstractmethod
    def close(self) -> None:
        """Release the source; safe to call twice."""

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """Between a successful :meth:`open` and :meth:`close`."""

    @property
    def damage(self) -> str | None:
        """What could not be read since :meth:`open` (frames of a damaged video file), said
        for the operator, or ``None``: a finite source that ends with damage ends on an error."""
        return None

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.description}>"
