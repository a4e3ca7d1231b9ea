"""Register a user's SavedModel (detector or segmenter) into the model store."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from streamsense.models.card import MAX_BATCH, InputSpec, ModelCard, Source
from streamsense.models.detection import check_detection_signature
from streamsense.models.digest import artifact_sha256
from streamsense.models.exceptions import ModelError, SignatureError
from streamsense.models.registry import create_adapter
from streamsense.models.runtime import SavedModelRunner
from streamsense.models.segmentation import check_segmentation_signature
from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import ImageTask

log = logging.getLogger(__name__)


def read_labels(path: Path) -> list[str]:
    """Class names from a JSON list or a text file with one name per line (line i names
    class id i as the model emits it)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        labels = json.loads(text)
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            msg = f"{path}: expected a JSON list of strings"
            raise ModelError(msg)
        return labels
    return [line.strip() for line in text.splitlines() if line.strip()]


def register_saved_model(
    store: ModelStore,
    path: Path,
    *,
    name: str,
    task: ImageTask,
    version: str | None = None,
    labels: list[str] | None = None,
    licence: str = "unknown (registered by a user)",
    score_threshold: float = 0.5,
    value_range: tuple[float, float] = (0.0, 255.0),
    champion: bool | None = None,
    allow_unsafe_ops: bool = False,
) -> ModelCard:
    """Check ``path``'s graphs for unsafe ops (before anything of it runs), validate its
    ``serving_default`` signature for ``task``, run it once, and copy it into ``store``.
    ``champion=None`` makes it champion only when ``name`` has none. ``allow_unsafe_ops``
    accepts a graph with file, process, Python or network ops and records them in the card."""
    if not (path / "saved_model.pb").is_file():
        msg = f"{path} is not a SavedModel directory (no saved_model.pb)"
        raise SignatureError(msg)
    runner = SavedModelRunner(path, allow_unsafe_ops=allow_unsafe_ops)
    if runner.unsafe_ops:
        log.warning("registering %s with unsafe ops (--allow-unsafe-ops): %s", path,
                    "; ".join(str(u) for u in runner.unsafe_ops))  # fmt: skip
    if task == "detect":
        key = check_detection_signature(runner.inputs, runner.outputs)
        adapter, params = "tfod", {"score_threshold": score_threshold, "iou_threshold": 0.5}
    elif task == "segment":
        key, _ = check_segmentation_signature(runner.inputs, runner.outputs)
        adapter, params = "logits", {"background_class": 0, "threshold": 0.5}
    else:
        msg = f"task must be detect or segment, not {task!r}"
        raise ModelError(msg)
    spec = runner.inputs[key]
    batch = spec.shape[0]
    version = version or store.next_version(name)
    card = ModelCard(
        name=name,
        version=version,
        task=task,
        adapter=adapter,
        format="saved_model",
        artifact="saved_model",
        sha256=artifact_sha256(path),
        licence=licence,
        source=Source(kind="user", notes=f"registered from {path}"),
        input=InputSpec(
            kind="image",
            shape=list(spec.shape),
            dtype=spec.dtype,
            value_range=value_range,
            resize="stretch" if None not in spec.shape[1:3] else "none",
        ),
        labels=labels or [],
        params=params,
        preferred_batch=1 if batch == 1 else 4,
        max_batch=min(int(batch), MAX_BATCH) if batch is not None else 8,
        allow_unsafe_ops=bool(runner.unsafe_ops),
        unsafe_ops=sorted({str(u) for u in runner.unsafe_ops}),
    )
    import tensorflow as tf

    smoke = create_adapter(card, path)
    smoke.load()
    try:
        smoke.predict_batch([smoke.sample_input()])
    except (ValueError, TypeError, KeyError, IndexError, tf.errors.OpError) as exc:
        msg = f"{path}: the model validated but failed on a sample image: {exc}"
        raise SignatureError(msg) from exc
    store.put(name, version, path, card)
    if champion or (champion is None and store.champion(name) is None):
        store.set_champion(name, version)
    log.info("registered %s/%s (%s) from %s", name, version, task, path)
    return card
