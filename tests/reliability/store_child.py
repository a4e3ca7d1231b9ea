"""Writes versions into a model store in a loop, for the kill -9 test.

usage: python -m tests.reliability.store_child STORE ARTIFACT_DIR
Each round: ``put`` the next version (sha256 of the artifact in its card), then make it the
champion. Prints "put N" after each; runs until killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from streamsense.models.card import InputSpec, ModelCard, Source
from streamsense.models.digest import artifact_sha256
from streamsense.models.store import ModelStore

NAME = "victim"


def card(version: str, sha256: str) -> ModelCard:
    return ModelCard(
        name=NAME,
        version=version,
        task="segment",
        adapter="logits",
        format="saved_model",
        artifact="saved_model",
        sha256=sha256,
        licence="test data",
        source=Source(kind="user"),
        input=InputSpec(kind="image", shape=[None, 64, 64, 3], dtype="float32"),
        labels=["background", "person"],
    )


def main() -> None:
    store, artifact = ModelStore(Path(sys.argv[1])), Path(sys.argv[2])
    sha = artifact_sha256(artifact)
    print("ready", flush=True)
    while True:
        version = store.next_version(NAME)
        store.put(NAME, version, artifact, card(version, sha))
        store.set_champion(NAME, version)
        print(f"put {version}", flush=True)


if __name__ == "__main__":
    main()
