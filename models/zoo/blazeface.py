"""BlazeFace short range face detector (MediaPipe, TFLite)."""

from __future__ import annotations

from models.card import InputSpec, ModelCard, Source
from models.store import artifact_sha256
from models.zoo import mediapipe as mp
from models.zoo.base import BuildContext, Built, ZooModel

NAME = "face-blazeface"
VERSION = "1"


def build(ctx: BuildContext) -> Built:
    ctx.step("mediapipe wheel", 1)
    path = mp.extract_tflite(mp.FACE_DETECTOR, ctx.downloads, ctx.workdir)
    ctx.step("checked", 1)
    card = ModelCard(
        name=NAME,
        version=VERSION,
        task="detect",
        adapter="blazeface",
        format="tflite",
        artifact=path.name,
        sha256=artifact_sha256(path),
        licence=mp.LICENCE,
        source=Source(
            kind="pypi",
            package=mp.PACKAGE,
            package_version=mp.PACKAGE_VERSION,
            files=[mp.FACE_DETECTOR.member],
            upstream="https://github.com/google-ai-edge/mediapipe",
        ),
        input=InputSpec(
            kind="image",
            shape=[1, 128, 128, 3],
            dtype="float32",
            value_range=(-1.0, 1.0),
            resize="letterbox",
        ),
        labels=["face"],
        params={"score_threshold": 0.5, "iou_threshold": 0.3, "max_detections": 100},
        preferred_batch=4,
        max_batch=16,
        description="Short-range (within ~2 m) face detector; 896 SSD anchors, 6 keypoints.",
    )
    return Built(path, card)


MODEL = ZooModel(NAME, VERSION, "detect", "BlazeFace short range (faces)", 2, build)
