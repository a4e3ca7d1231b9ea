"""The analytics app's integration fixture, shared by its test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.analytics.test_app_integration import Env


@pytest.fixture
def env(stack: dict[str, str], tmp_path: Path) -> Iterator[Env]:
    """A private app id and topics on the session's broker and Redis, closed afterwards."""
    e = Env(stack, tmp_path)
    try:
        yield e
    finally:
        e.close()
