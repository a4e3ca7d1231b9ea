"""Follow ``models.updates`` and hot-swap the served model between batches.

Every replica reads the whole topic (see :mod:`streamsense.services.kafka.model_updates`), so a
worker that starts after an announcement still applies the newest champion it finds.
"""

from __future__ import annotations

import logging
import time

from streamsense.schemas.model_updates import ModelVersion
from streamsense.services.kafka.model_updates import ModelUpdatesFollower, announce
from streamsense.services.kafka.producer import Producer
from streamsense.services.settings import StreamsenseSettings
from streamsense.services.workers.slot import ModelSlot

log = logging.getLogger(__name__)


class UpdateFollower:
    def __init__(self, settings: StreamsenseSettings, slot: ModelSlot) -> None:
        self.settings = settings
        self.slot = slot
        self._updates = ModelUpdatesFollower(settings, slot.current.name, from_start=True)
        # its own producer: rejections are announced from the loading thread, outside the
        # loop's transactions
        self._producer = Producer(settings)
        self.seen: list[ModelVersion] = []
        slot.on_rejected = self._announce_rejected

    def poll(self) -> None:
        """Apply announcements that arrived since the last call (non-blocking)."""
        for mv in self._updates.poll():
            self.seen.append(mv)
            if mv.stage == "champion" and (mv.name, mv.model_version) != self.slot.ref:
                log.info("models.updates: %s@%s is the new champion", mv.name, mv.model_version)
                self.slot.offer(mv.name, mv.model_version)

    def _announce_rejected(self, name: str, version: str, error: BaseException) -> None:
        """A version this worker could not load is announced as rejected, with the reason."""
        prev = next((m for m in reversed(self.seen) if m.model_version == version), None)
        if prev is None:
            return
        rejected = prev.model_copy(
            update={
                "stage": "rejected",
                "reason": f"{type(error).__name__}: {error}"[:500],
                "created_ns": time.time_ns(),
            }
        )
        announce(self._producer, self.settings, rejected, wait_s=None)

    def close(self) -> None:
        self._updates.close()
        self._producer.close(5)
