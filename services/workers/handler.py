"""The inference handler plugged into the batch loop: check, choose (when behind), decode
(overlapped with the previous batch's model call), predict, encode."""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Message

from streamsense.models.exceptions import BadInputError
from streamsense.schemas.frames import FrameHeaders
from streamsense.services.kafka.handler import BatchHandler, Outcome, OutRecord
from streamsense.services.observability import metrics
from streamsense.services.workers.codecs import FrameCodec, Item, TextCodec
from streamsense.services.workers.schedule import Candidate, FrameScheduler
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
        scheduler: FrameScheduler | None = None,
    ) -> None:
        self.codec = codec
        self.slot = slot
        self.output_topic = output_topic
        self.scheduler = scheduler
        self.skipped: Counter[str] = Counter()  # reason -> frames
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
        self._service = service

    @property
    def stale(self) -> int:
        return self.skipped["stale"]

    def fetch_limit(self, configured: int) -> int:
        if self.scheduler is None or not self.scheduler.behind:
            return configured
        return max(configured, self.scheduler.fetch_limit())

    def prefetch(self) -> bool:
        return self.scheduler is None or not self.scheduler.behind

    def prepare(self, messages: list[Message]) -> list[Item]:
        now = time.time_ns()
        items = [Item(m, now) for m in messages]
        for it in items:
            self.codec.check(it)
        if self.scheduler is not None:
            self._choose(items)
        todo = [it for it in items if it.ready]
        if self._pool is not None and len(todo) > 1:
            list(self._pool.map(self.codec.decode, todo))
        else:
            for it in todo:
                self.codec.decode(it)
        return items

    def _choose(self, items: list[Item]) -> None:
        assert self.scheduler is not None
        frames = [it for it in items if it.ready and isinstance(it.meta, FrameHeaders)]
        candidates = [
            Candidate(m.camera_id, m.seq, it.consumed_ns - m.capture_ns)
            for it in frames
            if isinstance((m := it.meta), FrameHeaders)
        ]
        for it, keep in zip(frames, self.scheduler.choose(candidates), strict=True):
            if not keep:
                it.skip = "behind"

    def process(self, prepared: list[Item]) -> list[Outcome]:
        adapter = self.slot.current
        model = (adapter.name, adapter.version)
        ready = [it for it in prepared if it.ready]
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
            if self.scheduler is not None:
                self.scheduler.observe(model_ms, len(ready))
        batch = len(ready)
        outcomes: list[Outcome] = []
        for it in prepared:
            if it.error is not None:
                outcomes.append(it.error)
            elif it.skip is not None:
                self.skipped[it.skip] += 1
                metrics.SKIPPED.labels(self._service, it.skip).inc()
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
            if meta is None or not it.ready:
                continue
            cap = meta.capture_ns if isinstance(meta, FrameHeaders) else meta.ts_ns
            self._e2e.observe((now - cap) / 1e9)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"skipped {reason}": n for reason, n in self.skipped.items()}
        if self.scheduler is not None and self.scheduler.behind:
            out["behind"] = "yes"
        return out

    def between_batches(self) -> None:
        if self.follower is not None:
            self.follower.poll()
        self.slot.swap_if_ready()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """The model serving; a fallback from a corrupt champion is reported (the worker is
        still doing its job) until another version is swapped in."""
        name, version = self.slot.ref
        detail: dict[str, Any] = {"model": f"{name}@{version}", "skipped": dict(self.skipped)}
        if self.fallback is not None and self.fallback[0] == version:
            detail["model_fallback"] = self.fallback[1]
        if self.scheduler is not None:
            per_camera = self.scheduler.skipped.most_common(20)
            load = self.scheduler.load  # frames arriving / what the model serves
            detail.update(behind=self.scheduler.behind, skipped_behind=dict(per_camera),
                          load=None if load is None else round(load, 2))  # fmt: skip
        return True, detail

    def close(self) -> None:
        if self.follower is not None:
            self.follower.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
