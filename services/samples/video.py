"""``sample.mp4``: scikit-image's bundled photos (a person, a cup, a cat, a rocket, a camera
man) with motion - zoom, pan, slide - written with OpenCV's VideoWriter (mp4v) and read back."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from streamsense.services.exceptions import ServiceError

log = logging.getLogger(__name__)

Image = npt.NDArray[Any]
WIDTH, HEIGHT = 1280, 720


class SampleError(ServiceError):
    """A sample could not be written or does not read back."""


def _photos() -> dict[str, Image]:
    from skimage import data  # heavy import, only when samples are made

    rgb = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(),
           "rocket": data.rocket()}  # fmt: skip
    out = {name: cv2.cvtColor(img, cv2.COLOR_RGB2BGR) for name, img in rgb.items()}
    out["camera"] = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    return out


def _ease(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * min(max(t, 0.0), 1.0))


@dataclass(frozen=True)
class Shot:
    """A photo moved over the canvas: at progress t the source point ``center`` (interpolated)
    lands on canvas point ``at`` (interpolated) with scale ``scale`` (interpolated)."""

    photo: str
    scale: tuple[float, float]
    center: tuple[tuple[float, float], tuple[float, float]]
    at: tuple[tuple[float, float], tuple[float, float]] = ((WIDTH / 2, HEIGHT / 2),) * 2

    def matrix(self, t: float) -> Image:
        e = _ease(t)

        def lerp(a: float, b: float) -> float:
            return a + (b - a) * e

        s = lerp(*self.scale)
        cx, cy = (lerp(self.center[0][i], self.center[1][i]) for i in range(2))
        ax, ay = (lerp(self.at[0][i], self.at[1][i]) for i in range(2))
        return np.array([[s, 0.0, ax - s * cx], [0.0, s, ay - s * cy]], dtype=np.float64)


#: 6 scenes: zoom into the astronaut's face, pan over the coffee cup, the cat slides in, zoom out
#: of the rocket, pan over the camera man, then person + cup + cat together, drifting.
SCENES: tuple[tuple[Shot, ...], ...] = (
    (Shot("astronaut", (1.4, 2.6), ((256, 256), (225, 150))),),
    (Shot("coffee", (2.2, 2.2), ((180, 200), (420, 200))),),
    (Shot("chelsea", (2.0, 2.0), ((225, 150), (225, 150)), ((1900, 360), (640, 360))),),
    (Shot("rocket", (3.0, 1.15), ((320, 200), (320, 213))),),
    (Shot("camera", (1.8, 1.8), ((150, 150), (360, 330))),),
    (
        Shot("astronaut", (0.8, 0.8), ((256, 256),) * 2, ((230, 360), (260, 380))),
        Shot("coffee", (0.75, 0.75), ((300, 200),) * 2, ((660, 360), (640, 330))),
        Shot("chelsea", (0.9, 0.9), ((225, 150),) * 2, ((1060, 380), (1030, 360))),
    ),
)


def _background(t: float) -> Image:
    """A dark gradient that shifts slowly, so no two frames are equal."""
    x = np.linspace(0.0, 1.0, WIDTH, dtype=np.float32)
    base = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    base[:] = np.stack([40 + 30 * x, 30 + 20 * np.roll(x, int(t * 200)), 50 + 25 * (1 - x)], -1)
    return base


def frames(fps: int, seconds: float) -> Iterator[Image]:
    photos = _photos()
    total = max(1, round(fps * seconds))
    per_scene = max(1, math.ceil(total / len(SCENES)))
    for i in range(total):
        scene = SCENES[min(i // per_scene, len(SCENES) - 1)]
        t = (i % per_scene) / max(1, per_scene - 1)
        canvas = _background(i / total)
        for shot in scene:
            cv2.warpAffine(photos[shot.photo], shot.matrix(t), (WIDTH, HEIGHT), dst=canvas,
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)  # fmt: skip
        cv2.putText(canvas, f"streamsense sample  {i / fps:5.1f} s", (24, HEIGHT - 24),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.8, (235, 235, 235), 2, cv2.LINE_AA)  # fmt: skip
        yield canvas


def make_video(
    path: Path, fps: int = 10, seconds: float = 15.0, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Write the sample video and check it reads back; returns its properties."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, (WIDTH, HEIGHT))
    if not writer.isOpened():
        msg = f"OpenCV cannot write mp4v video to {tmp}"
        raise SampleError(msg)
    written = 0
    try:
        for frame in frames(fps, seconds):
            writer.write(frame)
            written += 1
            if progress is not None:
                progress(written)
    finally:
        writer.release()
    info = check_video(tmp, written, fps)
    tmp.replace(path)
    return info


def check_video(path: Path, expected_frames: int, fps: int) -> dict[str, Any]:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            msg = f"{path} does not open with cv2.VideoCapture"
            raise SampleError(msg)
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        got_fps = float(cap.get(cv2.CAP_PROP_FPS))
        count = 0
        while cap.grab():
            count += 1
    finally:
        cap.release()
    if size != (WIDTH, HEIGHT) or count != expected_frames or abs(got_fps - fps) > 0.01:
        msg = (f"{path} reads back as {size[0]}x{size[1]}, {count} frames at {got_fps} fps; "
               f"wrote {WIDTH}x{HEIGHT}, {expected_frames} frames at {fps}")  # fmt: skip
        raise SampleError(msg)
    return {"width": WIDTH, "height": HEIGHT, "fps": fps, "frames": count,
            "seconds": count / fps, "bytes": path.stat().st_size}  # fmt: skip
