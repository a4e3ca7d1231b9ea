"""Batch bucketing and device selection."""

from __future__ import annotations

import pytest

from streamsense.models.runtime import batch_plan, configure_devices


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
