"""What one camera is asked to do: its source and rate, its frames' size and quality, how it
reconnects. ``produce camera`` builds one from its settings; ``produce cameras`` one per camera
of the fleet file (:mod:`~streamsense.services.producers.fleet_config`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamsense.services.producers.settings import CameraProducerSettings


@dataclass(frozen=True)
class ReconnectPolicy:
    """A lost live source is tried again after ``initial_s``, the wait doubling up to ``max_s``
    (so once the source is back it is found within ``max_s`` plus the time to open it);
    ``attempts`` tries in all, None: until stopped."""

    initial_s: float = 0.5
    max_s: float = 2.0
    attempts: int | None = None


@dataclass(frozen=True)
class CameraSpec:
    camera_id: str
    #: may hold credentials (from the file, ``password_env``...): out of the repr, shown only
    #: through :func:`~streamsense.services.producers.redact.redact_url`
    source: str = field(repr=False)
    fps: float | None = None
    default_fps: float = 10.0
    width: int | None = None
    jpeg_quality: int = 80
    loop: bool = False
    max_frames: int | None = None
    reconnect: ReconnectPolicy = ReconnectPolicy()
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0

    @classmethod
    def from_settings(
        cls, settings: CameraProducerSettings, camera_id: str, source: str
    ) -> CameraSpec:
        """``produce camera``: everything from the settings (environment and flags)."""
        s = settings
        return cls(
            camera_id=camera_id,
            source=source,
            fps=s.camera_fps,
            default_fps=s.camera_default_fps,
            width=s.camera_width,
            jpeg_quality=s.camera_jpeg_quality,
            loop=s.camera_loop,
            max_frames=s.camera_max_frames,
            reconnect=ReconnectPolicy(
                s.camera_reconnect_initial_s, s.camera_reconnect_max_s, s.camera_reconnect_attempts
            ),
            open_timeout_s=s.camera_open_timeout_s,
            read_timeout_s=s.camera_read_timeout_s,
        )
