"""The inference handler plugged into the batch loop: check, choose (when behind), decode
(overlapped with the previous batch's model call), predict, encode."""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Message

from streamsense.models.base import ModelAdapter
from streamsense.models.exceptions import BadInputError, ModelOutputError
from streamsense.schemas.frames import FrameHeaders
from streamsense.services.kafka.exceptions import FatalHandlerError, HandlerUnavailableError
from streamsense.services.kafka.handler import BatchHandler, Outcome, OutRecord
from streamsense.services.kafka.topics import DEFAULT_DEAD_LETTER_BYTES
from streamsense.services.observability import metrics
from streamsense.services.workers.codecs import FrameCodec, Item, TextCodec
from streamsense.services.workers.model_call import ModelCaller
from streamsense.services.workers.schedule import Candidate, FrameScheduler
from streamsense.services.workers.slot import ModelSlot
from streamsense.services.workers.updates import UpdateFollower

log = logging.getLogger(__name__)

#: Inputs in a row whose model output is refused before health turns red: a model wrong on
#: every real input (though fine on its sample input) sends everything to the dead letters.
MODEL_FAULT_RUN = 20

LATENCY_SAMPLES = 64


def _source_id(item: Item) -> str:
    """A result's key: the validated source id (the input's key is whatever its producer
    chose: null, binary, 1 MB, another source's), so each source's results stay in order."""
    meta = item.meta
    assert meta is not None
    return meta.camera_id if isinstance(meta, FrameHeaders) else meta.source_id


class InferenceHandler(BatchHandler[list[Item]]):
    """``prepare`` decodes in a thread pool while the loop's thread runs the previous batch.

    A model error on one input makes that input a dead letter and the rest of its batch is
    served. When the model fails on its own sample input too, the model is at fault, not the
    inputs: nothing is dead-lettered and the loop reads the batch again after a backoff, red
    with the reason meanwhile. Model calls run on a thread of their own
    (:mod:`~streamsense.services.workers.model_call`): one running past ``model_timeout_s``
    turns health red, and a stop gives up on it once it reaches that timeout."""

    def __init__(  # noqa: PLR0913 - the handler's parts
        self,
        service: str,
        codec: FrameCodec | TextCodec,
        slot: ModelSlot,
        output_topic: str,
        decode_threads: int = 2,
        scheduler: FrameScheduler | None = None,
        model_timeout_s: float = 30.0,
        max_result_bytes: int = DEFAULT_DEAD_LETTER_BYTES,
    ) -> None:
        self.codec = codec
        #: largest result (key + value) the results topic accepts, uncompressed: a larger one
        #: would fail the batch's delivery on every retry and stall the partition behind it
        self.max_result_bytes = max_result_bytes
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
        self._model = ModelCaller(model_timeout_s, name=f"{service}-model")
        #: inputs in a row whose output the model got wrong (ModelOutputError), and the last why
        self.output_faults = 0
        self._last_fault = ""

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
            outputs = self._predict(adapter, ready)
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
                key = _source_id(it)
                outcomes.append(self._fitting(value, key, model))
            self._count_fault(outcomes[-1])
        self._observe_latency(prepared)
        return outcomes

    def _count_fault(self, outcome: Outcome) -> None:
        """A run of inputs the model's output was refused for (a model fine on its warmup
        sample, wrong on real inputs): every input becomes a dead letter, so health must say
        so (``MODEL_FAULT_RUN``); any result served ends the run."""
        if isinstance(outcome, ModelOutputError):
            self.output_faults += 1
            self._last_fault = str(outcome)[:300]
        elif not isinstance(outcome, BaseException) and outcome:
            self.output_faults = 0

    def _fitting(self, value: bytes, key: str, model: tuple[str, str]) -> Outcome:
        """The result record, or, when the results topic cannot take it, the reason the input
        becomes a dead letter (the frames behind it are served)."""
        size = len(value) + len(key.encode())
        if size <= self.max_result_bytes:
            return [OutRecord(self.output_topic, value, key=key)]
        msg = (
            f"the result of model {model[0]}@{model[1]} is {size} bytes, over the "
            f"{self.max_result_bytes} bytes its results topic {self.output_topic} accepts: not "
            "published (a mask this fragmented, or this many classes, is a model fault; check "
            "the model's output)"
        )
        return ModelOutputError(msg)

    def _predict(self, adapter: ModelAdapter[Any, Any], ready: list[Item]) -> dict[int, Any]:
        """Outputs by ``id(item)``; an item the model fails on gets its ``error``."""
        call = self._model.call
        try:
            preds = call(adapter.predict_batch, [it.value for it in ready])
            return {id(it): p for it, p in zip(ready, preds, strict=True)}
        except FatalHandlerError:
            raise
        except BadInputError:
            pass  # find the bad one(s) below
        except Exception as exc:
            self._check_model(adapter, exc)
        outputs: dict[int, Any] = {}
        for it in ready:  # one by one: only the inputs the model fails on are dead letters
            try:
                outputs[id(it)] = call(adapter.predict_batch, [it.value])[0]
            except FatalHandlerError:
                raise
            except Exception as exc:
                it.error = exc
        return outputs

    def _check_model(self, adapter: ModelAdapter[Any, Any], error: Exception) -> None:
        """After a model error on a batch: the model's own sample input tells poison inputs
        (they become dead letters) from a failing model (HandlerUnavailableError)."""
        try:
            self._model.call(adapter.predict_batch, [adapter.sample_input()])
        except FatalHandlerError:
            raise
        except Exception as sample_error:
            msg = (
                f"model {adapter.name}@{adapter.version} fails ({error!r}) and fails on its own "
                f"sample input too ({sample_error!r}): no input is dead-lettered, the batch is "
                "read again"
            )
            raise HandlerUnavailableError(msg) from error
        log.warning("model %s@%s failed on a batch (%r) but serves its sample input: finding "
                    "the input(s) it fails on", adapter.name, adapter.version, error)  # fmt: skip

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
        ok = True
        running = self._model.running_for()
        if running > self._model.timeout_s:
            ok = False
            detail["model_stuck"] = detail["problem"] = (
                f"a model call has run for {running:.0f} s, over the model timeout "
                f"({self._model.timeout_s:g} s, STREAMSENSE_WORKER_MODEL_TIMEOUT_S): the "
                "partitions behind it stall; restart the worker"
            )
        if self.output_faults >= MODEL_FAULT_RUN:
            ok = False
            detail["model_faulty"] = detail["problem"] = (
                f"model {name}@{version} gave an invalid output for the last "
                f"{self.output_faults} inputs in a row (all dead-lettered; the last: "
                f"{self._last_fault}): roll back (streamsense models rollback) or fix the model"
            )
        if self.fallback is not None and self.fallback[0] == version:
            detail["model_fallback"] = self.fallback[1]
        if self.slot.rejected is not None:  # the announced champion does not serve here
            detail["model_rejected"] = f"{self.slot.rejected}; {name}@{version} keeps serving"
        if self.scheduler is not None:
            per_camera = self.scheduler.skipped.most_common(20)
            load = self.scheduler.load  # frames arriving / what the model serves
            detail.update(behind=self.scheduler.behind, skipped_behind=dict(per_camera),
                          load=None if load is None else round(load, 2))  # fmt: skip
        return ok, detail

    def stop(self) -> None:
        self._model.stop()

    def close(self) -> None:
        self._model.close()
        if self.follower is not None:
            self.follower.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
