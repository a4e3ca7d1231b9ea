"""BlazeFace short range face detector (MediaPipe, TFLite)."""

from __future__ import annotations

from streamsense.models.card import InputSpec
from streamsense.models.zoo import mediapipe as mp
from streamsense.models.zoo.base import BuildContext, Built, ZooModel

NAME = "face-blazeface"
VERSION = "1"


def build(ctx: BuildContext) -> Built:
    return mp.build_tflite(
        ctx,
        mp.FACE_DETECTOR,
        name=NAME,
        version=VERSION,
        task="detect",
        adapter="blazeface",
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


MODEL = ZooModel(NAME, VERSION, "detect", "BlazeFace short range (faces)", 2, build)
