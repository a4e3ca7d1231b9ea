"""Selfie segmentation person segmenter (MediaPipe, TFLite)."""

from __future__ import annotations

from streamsense.models.card import InputSpec
from streamsense.models.zoo import mediapipe as mp
from streamsense.models.zoo.base import BuildContext, Built, ZooModel

NAME = "person-selfie"
VERSION = "1"


def build(ctx: BuildContext) -> Built:
    return mp.build_tflite(
        ctx,
        mp.SELFIE_SEGMENTER,
        name=NAME,
        version=VERSION,
        task="segment",
        adapter="selfie",
        input=InputSpec(
            kind="image",
            shape=[1, 256, 256, 3],
            dtype="float32",
            value_range=(0.0, 1.0),
            resize="stretch",
        ),
        labels=["person"],
        params={"threshold": 0.5},
        preferred_batch=4,
        max_batch=16,
        description="Person/background segmentation (general model, 256x256), sigmoid mask. "
        "Needs LiteRT's default XNNPACK delegate (custom op Convolution2DTransposeBias).",
    )


MODEL = ZooModel(NAME, VERSION, "segment", "selfie segmentation (person mask)", 2, build)
