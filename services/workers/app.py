"""Wire a worker from small parts: model store -> adapter -> slot -> handler -> batch loop."""

from __future__ import annotations

import logging
from typing import Any

from streamsense.models.base import ModelAdapter
from streamsense.models.exceptions import ModelNotFoundError
from streamsense.models.runtime import configure_devices
from streamsense.models.store import ModelStore
from streamsense.schemas.catalog import dlq_topic
from streamsense.services.exceptions import ConfigError
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.topics import dead_letter_budget, verify_topics
from streamsense.services.workers.codecs import FrameCodec, Item, TextCodec
from streamsense.services.workers.handler import InferenceHandler
from streamsense.services.workers.model_call import warm
from streamsense.services.workers.schedule import FrameScheduler
from streamsense.services.workers.settings import WorkerSettings
from streamsense.services.workers.slot import ModelSlot
from streamsense.services.workers.updates import UpdateFollower

log = logging.getLogger(__name__)


def model_side(adapter: ModelAdapter[Any, Any]) -> int | None:
    """The short side of the model's image input, e.g. 512 for CenterNet, if known."""
    shape = adapter.card.input.shape
    dims = [d for d in shape[1:3] if isinstance(d, int)] if len(shape) >= 3 else []
    return min(dims) if len(dims) == 2 else None


def written_topics(settings: WorkerSettings) -> list[str]:
    """The topics a worker writes: its results topic and its input's dead-letter topic."""
    return [settings.output_topic, dlq_topic(settings.input_topic)]


def build_worker(
    settings: WorkerSettings, store: ModelStore | None = None, *, check_topics: bool = False
) -> tuple[BatchLoop[list[Item]], InferenceHandler]:
    """The worker's loop and handler. ``check_topics`` (the ``streamsense worker`` command)
    refuses results and dead-letter topics that differ from the topic spec, before the model
    is loaded. Without a pinned version the champion serves, or, when it is corrupt, the
    newest version that loads (the handler's health says so)."""
    if check_topics:
        verify_topics(settings, written_topics(settings))
    device = configure_devices()
    store = store or ModelStore(settings.model_store_dir)
    name, version = settings.model_spec
    fallback: str | None = None
    try:
        if version is None:
            adapter, fallback = store.load_serving(name)
        else:
            adapter = store.load(name, version)
    except ModelNotFoundError as exc:  # the name (or version) the user gave does not exist
        raise ConfigError(str(exc)) from exc
    if adapter.card.task != settings.task:
        msg = (
            f"--model {name}: it is a {adapter.card.task} model and this is a {settings.task} "
            f"worker (`streamsense models list` shows each model's task)"
        )
        raise ConfigError(msg)
    warm(adapter, settings.worker_warmup_timeout_s)
    codec: FrameCodec | TextCodec
    if settings.task == "sentiment":
        codec = TextCodec()
    else:
        codec = FrameCodec(
            settings.task,
            settings.worker_max_message_bytes,
            settings.worker_max_pixels,
            settings.worker_max_frame_age_ms,
        )
        codec.need_side = model_side(adapter)
    slot = ModelSlot(adapter, lambda n, v: store.load(n, v), settings.worker_warmup_timeout_s)
    max_batch = settings.worker_max_batch or max(adapter.preferred_batch, 1)
    scheduler = None
    if isinstance(codec, FrameCodec) and settings.worker_latency_budget_ms:
        scheduler = FrameScheduler(max_batch, settings.worker_latency_budget_ms)
    handler = InferenceHandler(
        settings.service_name,
        codec,
        slot,
        settings.output_topic,
        settings.worker_decode_threads,
        scheduler,
        settings.worker_model_timeout_s,
        # a results topic's record budget: its limit less the record's framing (uncompressed,
        # so whatever the codec makes of it the broker accepts it)
        max_result_bytes=dead_letter_budget(settings.output_topic, settings.topic_prefix),
    )
    if fallback is not None:
        handler.fallback = (adapter.version, fallback)
    config = LoopConfig(
        topics=[settings.input_topic],
        group_id=settings.group_id,
        max_batch=max_batch,
        max_wait_ms=settings.worker_max_wait_ms,
        output_topics=[settings.output_topic],
        consumer_config={"fetch.max.bytes": 64 * 1024 * 1024},
    )
    loop = BatchLoop(settings, config, handler)  # its own producer (transactional: exactly-once)
    if settings.worker_follow_updates:
        handler.follower = UpdateFollower(settings, slot)
    log.info(
        "%s worker: %s@%s on %s, max batch %d, wait %d ms",
        settings.task,
        adapter.name,
        adapter.version,
        device,
        max_batch,
        settings.worker_max_wait_ms,
    )
    return loop, handler
