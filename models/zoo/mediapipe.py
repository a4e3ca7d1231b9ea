"""The two MediaPipe models the zoo takes from the ``mediapipe`` wheel (never installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamsense.models.card import ModelCard, Source
from streamsense.models.digest import artifact_sha256
from streamsense.models.zoo.base import BuildContext, Built
from streamsense.models.zoo.download import Pinned, fetch_members, pip_download

PACKAGE = "mediapipe"
PACKAGE_VERSION = "0.10.14"
LICENCE = "Apache-2.0"
FACE_DETECTOR = Pinned(
    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    229_714,
    "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
)
SELFIE_SEGMENTER = Pinned(
    "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    249_505,
    "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
)


def extract_tflite(pinned: Pinned, downloads: Path, dest: Path) -> Path:
    """One pinned ``.tflite`` file out of the cached (or freshly downloaded) wheel."""

    def wheel() -> Path:
        return pip_download(
            f"{PACKAGE}=={PACKAGE_VERSION}", f"{PACKAGE}-{PACKAGE_VERSION}-*.whl", downloads
        )

    (path,) = fetch_members(wheel, [pinned], dest)
    return path


def build_tflite(ctx: BuildContext, pinned: Pinned, **card: Any) -> Built:
    """Extract ``pinned`` and describe it: a TFLite card with this wheel as its source;
    ``card`` holds the model's own fields (name, task, adapter, input, labels, ...)."""
    ctx.step("mediapipe wheel", 1)
    path = extract_tflite(pinned, ctx.downloads, ctx.workdir)
    ctx.step("checked", 1)
    source = Source(
        kind="pypi",
        package=PACKAGE,
        package_version=PACKAGE_VERSION,
        files=[pinned.member],
        upstream="https://github.com/google-ai-edge/mediapipe",
    )
    model_card = ModelCard(
        format="tflite",
        artifact=path.name,
        sha256=artifact_sha256(path),
        licence=LICENCE,
        source=source,
        **card,
    )
    return Built(path, model_card)
