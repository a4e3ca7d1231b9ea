"""Selfie segmentation person segmenter (MediaPipe, TFLite)."""

from __future__ import annotations

from models.card import InputSpec, ModelCard, Source
from models.store import artifact_sha256
from models.zoo import mediapipe as mp
from models.zoo.base import BuildContext, Built, ZooModel

NAME = "person-selfie"
VERSION = "1"


def build(ctx: BuildContext) -> Built:
    ctx.step("mediapipe wheel", 1)
    path = mp.extract_tflite(mp.SELFIE_SEGMENTER, ctx.downloads, ctx.workdir)
    ctx.step("checked", 1)
    card = ModelCard(
        name=NAME,
        version=VERSION,
        task="segment",
        adapter="selfie",
        format="tflite",
        artifact=path.name,
        sha256=artifact_sha256(path),
        licence=mp.LICENCE,
        source=Source(
            kind="pypi",
            package=mp.PACKAGE,
            package_version=mp.PACKAGE_VERSION,
            files=[mp.SELFIE_SEGMENTER.member],
            upstream="https://github.com/google-ai-edge/mediapipe",
        ),
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
    return Built(path, card)


MODEL = ZooModel(NAME, VERSION, "segment", "selfie segmentation (person mask)", 2, build)
