"""A checkpoint file is input: hand-edited, half-restored from a backup, written by another
version. Whatever it holds, ``produce text`` says which entry is wrong and what to do, exits 2,
sends nothing and leaves the file as it was. Before: a traceback (``OSError: [Errno 22]`` for a
negative position, ``AttributeError: 'list' object has no attribute 'items'``, ``TypeError``),
or, for a source id the contracts refuse, records that break them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.producers.conftest import topic_size
from tests.producers.test_text import append

pytestmark = pytest.mark.integration

PID = "b8fa0748586f48c597213233775421f3"
FP = "8db1fba214a6d978800dea50d9a159c2d2262ee205f1786267fade87d934616a"


def _entry(**kw: Any) -> dict[str, Any]:
    return {"path": "/x/a.log", "source_id": "a.log", "position": 4, "lines": 1, "fp": FP,
            "fp_len": 4, **kw}  # fmt: skip


def _doc(key: str, **entry: Any) -> dict[str, Any]:
    return {"producer_id": PID, "files": {key: _entry(**entry)}, "sources": {"a.log": 1}}


# (what is wrong, the document, the part of the message that names it)
CASES: list[tuple[str, Callable[[str], Any], str]] = [
    (
        "negative position",
        lambda k: _doc(k, position=-5, fp_len=0),
        "files.{k}.position: Input should be greater than or equal to 0",
    ),
    (
        "position as text",
        lambda k: _doc(k, position="4"),
        "files.{k}.position: Input should be a valid integer",
    ),
    (
        "negative fingerprint length",
        lambda k: _doc(k, fp_len=-1),
        "files.{k}.fp_len: Input should be greater than or equal to 0",
    ),
    (
        "no line count",
        lambda k: _doc(k, lines=None),
        "files.{k}.lines: Input should be a valid integer",
    ),
    (
        "files as a list",
        lambda k: {"producer_id": PID, "files": [], "sources": {}},
        "files: Input should be a valid dictionary",
    ),
    (
        "a source id the contracts refuse",
        lambda k: _doc(k, source_id="a\x1b[2Jb"),
        "files.{k}.source_id: ",
    ),
    (
        "a negative seq",
        lambda k: {**_doc(k), "sources": {"a.log": -7}},
        "sources.a.log: Input should be greater than or equal to 0",
    ),
    (
        "an empty producer id",
        lambda k: {**_doc(k), "producer_id": ""},
        "producer_id: String should match pattern",
    ),
    (
        "a file key that is not dev:inode",
        lambda k: _doc("../../etc"),
        "files.../../etc.[key]: String should match pattern",
    ),
    ("not a JSON object", lambda k: [], "Input should be a valid dictionary"),
]


@pytest.mark.parametrize(("what", "doc", "named"), CASES, ids=[c[0] for c in CASES])
def test_a_hostile_checkpoint_is_a_usage_error_naming_the_entry(
    what: str,
    doc: Callable[[str], Any],
    named: str,
    stack: dict[str, str],
    make_topic: Callable[..., str],
    repo_root: Path,
    tmp_path: Path,
) -> None:
    topic = make_topic("text")
    log = tmp_path / "a.log"
    append(log, "a-0", "a-1")
    st = os.stat(log)
    key = f"{st.st_dev}:{st.st_ino}"
    ckpt = tmp_path / "ckpt.json"
    ckpt.write_bytes(orjson.dumps(doc(key)))
    before = ckpt.read_bytes()
    res = subprocess.run(
        [sys.executable, "-m", "streamsense.services.cli", "produce", "text", "--path", str(log),
         "--checkpoint", str(ckpt), "--topic", topic],
        cwd=repo_root, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "STREAMSENSE_KAFKA_BOOTSTRAP": stack["bootstrap"]},
    )  # fmt: skip
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert res.returncode == 2, res.stderr[-3000:]
    errors = [" ".join(x.split()) for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, res.stderr[-3000:]
    assert errors[0].startswith(f"error: checkpoint {ckpt} is invalid: "), errors[0]
    assert named.format(k=key) in errors[0], errors[0]
    assert errors[0].endswith(
        "; fix it, or move it away to start over (each file is then sent again from its start)"
    ), errors[0]
    assert ckpt.read_bytes() == before, "the checkpoint is left as it was, for a look"
    assert topic_size(stack["bootstrap"], topic) == 0, f"{what}: nothing is sent"
