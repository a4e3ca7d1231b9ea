"""One runtime for the three artifact formats: TFLite (LiteRT), TF SavedModel and Keras.

Every runner takes numpy arrays with a leading batch dimension and returns numpy arrays.
Batch sizes are bucketed to powers of two (:func:`batch_plan`) so a ``tf.function`` sees a
handful of shapes and never retraces, and a LiteRT interpreter is allocated once per bucket.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamsense.models.exceptions import BadInputError, ModelIntegrityError, SignatureError
from streamsense.models.tfimport import import_tensorflow

log = logging.getLogger(__name__)

_device_lock = threading.Lock()
_device: str | None = None


def configure_devices() -> str:
    """Use the GPU when present (with memory growth), the CPU otherwise; returns the device.

    Idempotent. Memory growth must be set before TensorFlow touches the GPU, so every runner
    calls this before loading a model.
    """
    global _device
    with _device_lock:
        if _device is None:
            tf = import_tensorflow()
            gpus = tf.config.list_physical_devices("GPU")
            for gpu in gpus:
                try:
                    tf.config.experimental.set_memory_growth(gpu, True)
                except RuntimeError:  # already initialised by someone else: keep going
                    log.warning("could not enable memory growth on %s", gpu.name)
            _device = "GPU" if gpus else "CPU"
            log.info("TensorFlow runs on %s (%d GPU(s))", _device, len(gpus))
        return _device


def batch_plan(n: int, max_batch: int) -> list[int]:
    """Split ``n`` items into power-of-two chunks of at most ``max_batch`` (largest first).

    ``batch_plan(13, 8) == [8, 4, 1]``: no padding is computed and only log2(max) + 1 shapes
    ever reach a model.
    """
    if n < 0 or max_batch < 1:
        msg = f"batch_plan({n}, {max_batch})"
        raise ValueError(msg)
    top = 1 << (max_batch.bit_length() - 1)
    plan: list[int] = []
    while n > 0:
        size = min(top, 1 << (n.bit_length() - 1))
        plan.append(size)
        n -= size
    return plan


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def dim(self, axis: int) -> int:
        """A fixed dimension; SignatureError when it is free (None)."""
        value = self.shape[axis]
        if value is None:
            msg = f"tensor {self.name!r} has a free dimension {axis}: {self.shape}"
            raise SignatureError(msg)
        return int(value)


class TFLiteRunner:
    """A ``.tflite`` model on LiteRT, with one interpreter per batch size.

    Default delegates stay enabled: XNNPACK provides custom ops some models need (selfie
    segmentation's ``Convolution2DTransposeBias``). Interpreters are not thread safe; calls
    are serialised by a lock.
    """

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        self._threads = num_threads or default_threads()
        self._make: Callable[[], Any] = lambda: Interpreter(
            model_path=str(path), num_threads=self._threads
        )
        self._lock = threading.Lock()
        try:
            base = self._make()
        except (ValueError, RuntimeError) as exc:
            msg = f"{path}: not a loadable TFLite model: {exc}"
            raise ModelIntegrityError(msg) from exc
        details = base.get_input_details()
        if len(details) != 1:
            msg = f"{path}: expected one input, found {len(details)}"
            raise SignatureError(msg)
        shape = tuple(int(d) for d in details[0]["shape"])
        self.input = TensorInfo(details[0]["name"], shape, np.dtype(details[0]["dtype"]).name)
        self.outputs = [d["name"] for d in base.get_output_details()]
        self._interpreters: dict[int, tuple[Any, int, list[int]]] = {}
        self._bases = [base]

    def _interpreter(self, batch: int) -> tuple[Any, int, list[int]]:
        """(interpreter, input index, output indices) allocated for ``batch``."""
        entry = self._interpreters.get(batch)
        if entry is None:
            it = self._bases.pop() if self._bases else self._make()
            index = it.get_input_details()[0]["index"]
            if int(it.get_input_details()[0]["shape"][0]) != batch:
                it.resize_tensor_input(index, [batch, *self.input.shape[1:]], strict=False)
            it.allocate_tensors()
            entry = (it, index, [d["index"] for d in it.get_output_details()])
            self._interpreters[batch] = entry
        return entry

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Outputs for ``batch`` (shape ``[B, *input.shape[1:]]``), in the model's order."""
        if tuple(batch.shape[1:]) != self.input.shape[1:]:
            msg = f"input shape {batch.shape} does not fit {self.input.shape}"
            raise BadInputError(msg)
        with self._lock:
            it, index, outputs = self._interpreter(int(batch.shape[0]))
            it.set_tensor(index, batch)
            it.invoke()
            return [it.get_tensor(i).copy() for i in outputs]


class SavedModelRunner:
    """One signature of a TF SavedModel (a concrete function: no retracing).

    The graphs are inspected before anything is loaded (:mod:`streamsense.models.safety`): a
    model with file, process, Python or network ops raises UnsafeModelError unless
    ``allow_unsafe_ops`` (recorded in its card by ``models register --allow-unsafe-ops``)."""

    def __init__(
        self, path: Path, signature: str = "serving_default", *, allow_unsafe_ops: bool = False
    ) -> None:
        import tensorflow as tf

        from streamsense.models.safety import check_saved_model

        self.path = path
        self.unsafe_ops = check_saved_model(path, allow_unsafe_ops=allow_unsafe_ops)
        configure_devices()
        try:
            self._model = tf.saved_model.load(str(path))
        except (OSError, ValueError, tf.errors.OpError) as exc:
            msg = f"{path}: not a loadable SavedModel: {exc}"
            raise ModelIntegrityError(msg) from exc
        signatures = getattr(self._model, "signatures", {})
        if signature not in signatures:
            msg = f"{path}: no signature {signature!r} (found {sorted(signatures)})"
            raise SignatureError(msg)
        self._fn = signatures[signature]
        _, kwargs = self._fn.structured_input_signature
        self.inputs = {
            key: TensorInfo(key, tuple(spec.shape.as_list()), spec.dtype.name)
            for key, spec in kwargs.items()
        }
        self.outputs = {
            key: TensorInfo(key, tuple(spec.shape.as_list()), spec.dtype.name)
            for key, spec in self._fn.structured_outputs.items()
        }

    def run(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        tensors = {k: tf.convert_to_tensor(v) for k, v in inputs.items()}
        return {k: v.numpy() for k, v in self._fn(**tensors).items()}


def load_keras(path: Path) -> Any:
    """A ``.keras`` model, its archive checked first (:mod:`streamsense.models.archive`), then
    loaded with ``safe_mode=True`` and uncompiled; ModelIntegrityError or UnsafeModelError
    otherwise (never Keras's or zipfile's own exceptions)."""
    import keras

    from streamsense.models.archive import check_keras_archive

    check_keras_archive(path)
    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # any failure of a hostile file is "not loadable", never a crash
        msg = f"{path}: not a loadable Keras model: {type(exc).__name__}: {exc}"
        raise ModelIntegrityError(msg[:2000]) from exc


class KerasRunner:
    """A ``.keras`` model loaded with ``safe_mode=True`` and served through a ``tf.function``
    with a fixed input signature (never ``model.predict`` on the hot path)."""

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        configure_devices()
        self.path = path
        self._model = load_keras(path)
        if len(self._model.inputs) != 1:
            msg = f"{path}: expected one input, found {len(self._model.inputs)}"
            raise SignatureError(msg)
        spec = self._model.inputs[0]
        shape = tuple(spec.shape)
        self.input = TensorInfo(spec.name, shape, str(spec.dtype))
        self._spec = tf.TensorSpec(shape=(None, *shape[1:]), dtype=spec.dtype)
        model = self._model
        fn = tf.function(lambda x: model(x, training=False), input_signature=[self._spec])
        # called directly, the one concrete function skips tf.function's dispatch: 0.3-0.4 ms
        # of every call (a quiet line's model call 1.74 ms after idle against 2.14), but it
        # checks no shape, so run() does
        self._fn = fn.get_concrete_function()

    def run(self, batch: np.ndarray | Sequence[Any]) -> np.ndarray:
        import tensorflow as tf

        x = tf.convert_to_tensor(np.asarray(batch), dtype=self._spec.dtype)
        if not self._spec.shape.is_compatible_with(x.shape):
            msg = f"input shape {tuple(x.shape)} does not fit {self.input.shape}"
            raise BadInputError(msg)
        return np.asarray(self._fn(x))
