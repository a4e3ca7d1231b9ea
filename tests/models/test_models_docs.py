"""The Python examples in docs/models.md run against the zoo, so they never rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamsense.models.store import ModelStore

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


@pytest.mark.models
def test_python_examples_in_docs_run(zoo_store: ModelStore, monkeypatch: pytest.MonkeyPatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/models.md has no python example"
    monkeypatch.setenv("STREAMSENSE_MODEL_STORE", str(zoo_store.root))
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})  # our own documentation
