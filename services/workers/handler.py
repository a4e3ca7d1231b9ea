"""The inference handler plugged into the batch loop: decode (overlapped), predict, encode."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Message

from streamsense.models.exceptions import BadInputError
from streamsense.schemas.frames import FrameHeaders
from streamsense.services.kafka.handler import BatchHandler, Outcome, OutRecord
from streamsense.services.observability import metrics
from streamsense.services.workers.codecs import FrameCodec, Item, TextCodec
from streamsense.services.workers.slot import ModelSlot
from streamsense.services.workers.updates import UpdateFollower

log = logging.getLogger(__name__)

LATENCY_SAMPLES = 64


class InferenceHandler(BatchHandler[list[Item]]):
    """``prepare`` decodes in a thread pool while the loop's thread runs the previous batch."""

    def __init__(
        self,
        service: str,
        codec: FrameCodec | TextCodec,
        slot: ModelSlot,
        output_topic: str,
        decode_threads: int = 2,
    ) -> None:
        self.codec = codec
        self.slot = slot
        self.output_topic = output_topic
        self.stale = 0
        self.follower: UpdateFollower | None = None
        #: (version, why) while a version other than the corrupt champion serves
        self.fallback: tuple[str, str] | None = None
        self._pool = (
            ThreadPoolExecutor(decode_threads, thread_name_prefix="decode")
            if isinstance(codec, FrameCodec) and decode_threads > 1
            else None
        )
        self._model_s = metrics.MODEL_SECONDS.labels(service)
        self._e2e = metrics.E2E_LATENCY.labels(service)
        self._stale = metrics.SKIPPED.labels(service, "stale")

    def prepare(self, messages: list[Message]) -> list[Item]:
        now = time.time_ns()
        items = [Item(m, now) for m in messages]
        if self._pool is not None and len(items) > 1:
            list(self._pool.map(self.codec.decode, items))
        else:
            for it in items:
                self.codec.decode(it)
        return items

    def process(self, prepared: list[Item]) -> list[Outcome]:
        adapter = self.slot.current
        model = (adapter.name, adapter.version)
        ready = [it for it in prepared if it.error is None and not it.stale]
        outputs: dict[int, Any] = {}
        model_ms = 0.0
        if ready:
            t0 = time.perf_counter()
            try:
                preds = adapter.predict_batch([it.value for it in ready])
                outputs = {id(it): p for it, p in zip(ready, preds, strict=True)}
            except BadInputError:  # find the bad one(s): predict one by one
                for it in ready:
                    try:
                        outputs[id(it)] = adapter.predict_batch([it.value])[0]
                    except BadInputError as exc:
                        it.error = exc
            model_ms = (time.perf_counter() - t0) * 1000
            self._model_s.observe(model_ms / 1000)
        batch = len(ready)
        outcomes: list[Outcome] = []
        for it in prepared:
            if it.error is not None:
                outcomes.append(it.error)
            elif it.stale:
                self.stale += 1
                self._stale.inc()
                outcomes.append([])
            else:
                value = self.codec.encode(it, outputs[id(it)], model, model_ms, batch)
                key = it.msg.key()
                outcomes.append([OutRecord(self.output_topic, value, key=key)])
        self._observe_latency(prepared)
        return outcomes

    def _observe_latency(self, items: list[Item]) -> None:
        """Capture-to-result latency; large batches are sampled (at most 64 items, evenly
        strided) because a Prometheus observation costs more than the sentiment model."""
        now = time.time_ns()
        stride = max(1, len(items) // LATENCY_SAMPLES)
        for it in items[::stride]:
            meta = it.meta
            if meta is None or it.error is not None or it.stale:
                continue
            cap = meta.capture_ns if isinstance(meta, FrameHeaders) else meta.ts_ns
            self._e2e.observe((now - cap) / 1e9)

    def between_batches(self) -> None:
        if self.follower is not None:
            self.follower.poll()
        self.slot.swap_if_ready()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """The model serving; a fallback from a corrupt champion is reported (the worker is
        still doing its job) until another version is swapped in."""
        name, version = self.slot.ref
        detail: dict[str, Any] = {"model": f"{name}@{version}"}
        if self.fallback is not None and self.fallback[0] == version:
            detail["model_fallback"] = self.fallback[1]
        return True, detail

    def close(self) -> None:
        if self.follower is not None:
            self.follower.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
