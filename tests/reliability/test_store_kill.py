"""A process killed (SIGKILL) at random moments while it writes model versions: no partial
version ever becomes visible, and the champion pointer always names a complete version."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamsense.models.digest import artifact_sha256
from streamsense.models.store import ModelStore
from tests.reliability.conftest import REPO
from tests.reliability.store_child import NAME

pytestmark = pytest.mark.slow

KILLS = 25


def _artifact(folder: Path) -> Path:
    """A SavedModel-like directory of 5 MB, so a ``put`` takes long enough to be hit."""
    rng = random.Random(7)
    art = folder / "saved_model"
    (art / "variables").mkdir(parents=True)
    for i in range(20):
        (art / "variables" / f"part-{i:02d}").write_bytes(rng.randbytes(256 * 1024))
    (art / "saved_model.pb").write_bytes(rng.randbytes(4096))
    return art


def test_kill_9_during_put_never_exposes_a_partial_version(tmp_path: Path) -> None:
    art = _artifact(tmp_path)
    expected = artifact_sha256(art)
    root = tmp_path / "store"
    store = ModelStore(root)
    rng = random.Random(11)
    puts_seen = 0
    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.store_child", str(root), str(art)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        # let it write 0-3 versions, then kill it at a random moment (often mid-put)
        for _ in range(rng.randint(0, 3)):
            assert child.stdout.readline().startswith("put ")
            puts_seen += 1
        time.sleep(rng.uniform(0, 0.06))  # a random kill moment, not a wait for a condition
        child.kill()
        child.wait(10)
        child.stdout.close()
        versions = store.versions(NAME)
        for v in versions:  # every visible version is complete and verifies
            card = store.verify(NAME, v)
            assert card.sha256 == expected
        champion = store.champion(NAME)
        assert champion is None or champion in versions
    leftovers = [p.name for p in (root / NAME).iterdir() if p.name.startswith(".")]
    versions = store.versions(NAME)
    print(
        f"\nstore kill -9: {KILLS} kills, {len(versions)} complete versions, "
        f"{len(leftovers)} hidden temporary leftovers (kills mid-write)"
    )
    assert len(versions) >= puts_seen
    assert versions == [str(i) for i in range(1, len(versions) + 1)], "no version skipped"
    assert sum(p.startswith(".tmp-") for p in leftovers) >= 3, "kills must land mid-put"
    assert all(p.startswith((".tmp-", ".champion.json.")) for p in leftovers), leftovers
