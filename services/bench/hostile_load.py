"""The load of ``streamsense bench hostile``: good frames and text lines at a fixed rate, and in
the poisoned phase one hostile record in every ``1 / poison_fraction``, the classes of
:mod:`streamsense.services.bench.poison` in turn. Each class is sent as an attacker would: the
text that grows when recompressed with zstd, the huge frame with lz4 and a raised local limit."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import orjson
from skimage import data

from streamsense.models.digest import artifact_sha256
from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import FRAME_MAX_BYTES, Topic
from streamsense.schemas.model_updates import ModelVersion
from streamsense.schemas.registry import encode
from streamsense.schemas.text import TextEvent
from streamsense.services.bench import poison
from streamsense.services.kafka.model_updates import announce
from streamsense.services.kafka.producer import Producer
from streamsense.services.settings import StreamsenseSettings

SENTENCES = (
    "what a lovely day, thank you all",
    "the service was slow and the food was cold",
    "package arrived on time",
    "I will never order here again, terrible",
    "great support, fixed in minutes",
)
#: The detect worker's zoo model, offered an unsafe version by the ``unsafe-model`` class.
UNSAFE_MODEL = ("coco-centernet", "unsafe")
GIANT_LINE_BYTES = 8_000_000


def unsafe_version(store: ModelStore, work: Path) -> tuple[Path, str]:
    """Add ``coco-centernet@unsafe`` (a graph that reads and writes files, card not allowing
    it) to ``store``; returns the file its graph would write if it ever ran, and its sha256."""
    marker = work / "written-by-the-unsafe-model"
    name, version = UNSAFE_MODEL
    artifact = poison.unsafe_saved_model(work / "unsafe-saved-model", marker)
    champion = store.champion(name) or store.versions(name)[-1]
    card = store.card(name, champion).model_copy(
        update={"version": version, "sha256": artifact_sha256(artifact)}
    )
    store.put(name, version, artifact, card)
    return marker, card.sha256


class Load:
    def __init__(  # noqa: PLR0913 - the load's parameters
        self,
        settings: StreamsenseSettings,
        rate: float,
        frame_share: float,
        live_log: Path,
        unsafe_sha256: str,
    ) -> None:
        self.settings = settings
        self.unsafe_sha256 = unsafe_sha256
        self.rate = rate
        self.frame_share = frame_share
        self.live_log = live_log
        self.sent: Counter[str] = Counter()
        self._seq = 0
        self._producer = Producer(settings, linger_ms=5)
        self._zstd = Producer(settings, compression="zstd")
        self._big = Producer(settings, compression="lz4",
                             config={"message.max.bytes": 2 * FRAME_MAX_BYTES})  # fmt: skip
        rgb = cv2.resize(data.astronaut(), (320, 320))
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        self._jpeg = buf.tobytes()
        self._grows = poison.grows_when_recompressed()
        self._huge = poison.huge_non_jpeg()
        self._classes: list[tuple[str, Callable[[], None]]] = [
            ("text-grows-when-recompressed", self._text_grows),
            ("frame-huge-not-jpeg", self._frame_huge),
            ("frame-sof-bomb-over-budget", lambda: self._bomb(20000, 20000)),
            ("frame-sof-bomb-dense", lambda: self._bomb(8192, 8192)),
            ("frame-stale-poison", self._stale),
            ("frame-headers-lie", self._lying_headers),
            ("text-not-json", self._not_json),
            ("result-wrong-schema", self._wrong_result),
            ("giant-line", self._giant_line),
            ("unsafe-model-champion", self._unsafe_model),
        ]
        self._next_class = 0

    def only(self, names: list[str]) -> None:
        """Send only these hostile classes (e.g. the SOF bombs, to see their cost alone)."""
        unknown = set(names) - set(self.classes)
        if unknown:
            msg = f"unknown hostile classes {sorted(unknown)}: choose from {self.classes}"
            raise ValueError(msg)
        self._classes = [c for c in self._classes if c[0] in names]

    @property
    def classes(self) -> list[str]:
        return [name for name, _ in self._classes]

    def run(self, seconds: float, poison_fraction: float, stop: threading.Event) -> None:
        """Send for ``seconds`` at ``rate``; every ``1/poison_fraction``-th record is hostile."""
        every = round(1 / poison_fraction) if poison_fraction > 0 else 0
        start = time.monotonic()
        n = 0
        while not stop.is_set() and (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * self.rate)
            while n < due:
                n += 1
                if every and n % every == 0:
                    name, send = self._classes[self._next_class % len(self._classes)]
                    self._next_class += 1
                    send()
                    self.sent[name] += 1
                elif (n * self.frame_share) % 1 < self.frame_share:
                    self._frame()
                else:
                    self._text()
            self._producer.poll(0)
            stop.wait(0.01)
        for p in (self._producer, self._zstd, self._big):
            p.flush(30)

    def close(self) -> None:
        for p in (self._producer, self._zstd, self._big):
            p.close(10)

    # -- good records -------------------------------------------------------------------------

    def _frame(self) -> None:
        self._seq += 1
        camera = f"cam-{self._seq % 4}"
        headers = poison.frame_headers(camera, self._seq, 320, 320)
        self._producer.produce(self.settings.topic(Topic.FRAMES), self._jpeg, camera, headers)
        self.sent["frame"] += 1

    def _text(self) -> None:
        self._seq += 1
        source = f"app-{self._seq % 4}"
        ev = TextEvent(source_id=source, text=SENTENCES[self._seq % len(SENTENCES)],
                       ts_ns=time.time_ns(), seq=self._seq, trace_id=uuid.uuid4().hex)  # fmt: skip
        self._producer.produce(self.settings.topic(Topic.TEXT), encode(ev), source)
        self.sent["text"] += 1

    # -- hostile records ----------------------------------------------------------------------

    def _text_grows(self) -> None:
        self._zstd.produce(self.settings.topic(Topic.TEXT), self._grows, "poison")
        self._zstd.poll(0)

    def _frame_huge(self) -> None:
        headers = poison.frame_headers("poison-huge", self._seq, 1280, 720)
        self._big.produce(self.settings.topic(Topic.FRAMES), self._huge, "poison-huge", headers)
        self._big.poll(0)

    def _bomb(self, width: int, height: int) -> None:
        camera = f"bomb-{uuid.uuid4().hex[:6]}"  # its own camera: the sink tries a thumbnail
        headers = poison.frame_headers(camera, 0, 1280, 720)  # only the JPEG's SOF is a bomb
        self._producer.produce(self.settings.topic(Topic.FRAMES), poison.sof_bomb(width, height),
                               camera, headers)  # fmt: skip

    def _stale(self) -> None:
        headers = poison.frame_headers("poison-stale", 0, 64, 64, age_s=3600)
        self._producer.produce(self.settings.topic(Topic.FRAMES), poison.stale_poison(),
                               "poison-stale", headers)  # fmt: skip

    def _lying_headers(self) -> None:
        headers = poison.frame_headers("poison-lie", 0, 640, 480)
        self._producer.produce(self.settings.topic(Topic.FRAMES), self._jpeg, "poison-lie",
                               headers)  # fmt: skip

    def _not_json(self) -> None:
        self._producer.produce(self.settings.topic(Topic.TEXT), b"\xff\xfe not json", "poison")

    def _wrong_result(self) -> None:
        value = orjson.dumps({"schema": "streamsense.result.sentiment", "version": 1})
        self._producer.produce(self.settings.topic(Topic.DETECTIONS), value, "poison")

    def _giant_line(self) -> None:
        with self.live_log.open("ab") as fh:
            fh.write(poison.giant_line(GIANT_LINE_BYTES) + b"\nthe line after a giant one\n")

    def _unsafe_model(self) -> None:
        name, version = UNSAFE_MODEL
        mv = ModelVersion(
            name=name, model_version=version, task="detect", uri="model store",
            sha256=self.unsafe_sha256, stage="champion", created_ns=time.time_ns(),
        )  # fmt: skip
        announce(self._producer, self.settings, mv, wait_s=None)
