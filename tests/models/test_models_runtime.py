"""Batch bucketing and device selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamsense.models.exceptions import BadInputError
from streamsense.models.runtime import KerasRunner, batch_plan, configure_devices


@pytest.mark.parametrize(
    ("n", "max_batch", "plan"),
    [
        (1, 8, [1]),
        (13, 8, [8, 4, 1]),
        (16, 8, [8, 8]),
        (7, 16, [4, 2, 1]),
        (1024, 1024, [1024]),
        (1500, 1024, [1024, 256, 128, 64, 16, 8, 4]),
        (5, 1, [1, 1, 1, 1, 1]),
        (11, 12, [8, 2, 1]),  # a max that is no power of two rounds down to one
        (0, 8, []),
    ],
)
def test_batch_plan_uses_power_of_two_chunks(n: int, max_batch: int, plan: list[int]) -> None:
    assert batch_plan(n, max_batch) == plan
    assert sum(plan) == n


def test_batch_plan_needs_only_log2_shapes() -> None:
    shapes = {size for n in range(1, 200) for size in batch_plan(n, 16)}
    assert shapes == {1, 2, 4, 8, 16}


def test_batch_plan_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="batch_plan"):
        batch_plan(3, 0)


def test_device_is_cpu_or_gpu_and_stable() -> None:
    first = configure_devices()
    assert first in ("CPU", "GPU")
    assert configure_devices() == first


def test_the_keras_runner_checks_what_its_concrete_function_does_not(tmp_path: Path) -> None:
    """The runner calls the model's concrete function directly (no tf.function dispatch), which
    would take a batch of the wrong shape: the runner refuses it with BadInputError, converts a
    batch of another numeric type, and refuses values that cannot be converted."""
    import keras

    inp = keras.Input(shape=(3,), dtype="float32")
    model = keras.Model(inp, keras.layers.Dense(2, kernel_initializer="ones")(inp))
    path = tmp_path / "model.keras"
    model.save(path)
    runner = KerasRunner(path)
    out = runner.run(np.ones((2, 3), dtype=np.float64))
    assert out.shape == (2, 2) and out.dtype == np.float32
    assert out.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert runner.run([[1, 2, 3]]).tolist() == [[6.0, 6.0]]
    with pytest.raises(BadInputError, match=r"input shape \(2, 4\) does not fit \(None, 3\)"):
        runner.run(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(BadInputError, match="does not fit"):
        runner.run(np.ones((3,), dtype=np.float32))
    with pytest.raises(ValueError, match="could not convert"):
        runner.run(np.asarray([["a", "b", "c"]], dtype=object))
