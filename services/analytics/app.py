"""The Faust app: two agents (camera, text), two tables, a wall-clock timer, Redis flushing.

Each agent takes batches of raw records (``stream.take_events``), hands them to its
:class:`~streamsense.services.analytics.processor.Processor`, then, in this order:

1. dead letters go to ``<topic>.dlq``;
2. closed windows (``analytics.camera`` / ``analytics.text``) and alerts (``alerts``) are sent
   and their acknowledgements awaited;
3. the touched table rows are written to the changelog, each to its source's input partition;
4. Redis gets the windows, the totals and the alerts (buffered; a timer flushes them).

The batch's input offsets are acknowledged after that, and Faust commits acknowledged offsets
only after flushing its producer (``Consumer._commit_offsets``). So after a kill -9 every row
update is either in the changelog with the offset it includes, or its input is read again;
a row never includes an event twice because events at or below the row's offset are skipped.
Outputs are at-least-once: sent before the row that records them, they can repeat after a
crash (consumers upsert windows by source, window, start), but are never lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust

from streamsense.schemas.catalog import Topic, dlq_topic
from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import encode
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult
from streamsense.services.analytics import metrics as ametrics
from streamsense.services.analytics import transport
from streamsense.services.analytics.exceptions import AnalyticsError
from streamsense.services.analytics.observe import CameraConfig
from streamsense.services.analytics.processor import InRecord, Kind, Outcome, Processor
from streamsense.services.analytics.redis_out import RedisPublisher
from streamsense.services.analytics.rules import AlertEngine, RuleSet
from streamsense.services.analytics.settings import AnalyticsSettings, seconds_to_ns
from streamsense.services.analytics.status import STALLED_AFTER_S, Status
from streamsense.services.analytics.topology import Layout
from streamsense.services.analytics.windows import SourceState, WindowSpec
from streamsense.services.observability import metrics

log = logging.getLogger(__name__)

KINDS: tuple[Kind, ...] = ("camera", "text")


class AnalyticsApp:
    def __init__(
        self,
        settings: AnalyticsSettings,
        rules: RuleSet,
        layout: Layout,
        publisher: RedisPublisher | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.status = Status()
        self.service = settings.service_name
        conf = settings.faust_config(layout.replication_factor)
        conf["topic_partitions"] = layout.camera_partitions
        transport.register()
        self.app = faust.App(settings.app_id, **conf)
        self.processors = self._processors(settings, rules)
        changelog_conf = {
            "segment.ms": str(settings.analytics_changelog_segment_ms),
            "min.cleanable.dirty.ratio": "0.1",
            "max.message.bytes": str(settings.analytics_max_message_bytes),
        }
        self.tables: dict[str, Any] = {
            kind: self.app.Table(
                f"{kind}-state",
                partitions=parts,
                extra_topic_configs=changelog_conf,
                on_recover=self._on_recover,
                help=f"per-{kind} windows, totals, offsets and rule state",
            )
            for kind, parts in (
                ("camera", layout.camera_partitions),
                ("text", layout.text_partitions),
            )
        }
        topic = settings.topic
        self.outputs = {
            "camera": self._raw_topic(topic(Topic.ANALYTICS_CAMERA)),
            "text": self._raw_topic(topic(Topic.ANALYTICS_TEXT)),
        }
        self.alerts_topic = self._raw_topic(topic(Topic.ALERTS))
        self._dlq: dict[str, Any] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._recovered_generation: int | None = None
        self._next_offset: dict[tuple[str, int], int] = {}
        camera_in = self._raw_topic(*self.processors["camera"].inputs)
        text_in = self._raw_topic(*self.processors["text"].inputs)
        self.app.agent(camera_in, name="camera")(self._camera_agent)
        self.app.agent(text_in, name="text")(self._text_agent)
        self.app.timer(settings.analytics_tick_s)(self._tick)
        if publisher is not None:
            self.app.timer(settings.analytics_redis_flush_s)(publisher.flush)
            self.app.service(_closer(publisher))

    @staticmethod
    def _processors(settings: AnalyticsSettings, rules: RuleSet) -> dict[str, Processor]:
        tumbling = seconds_to_ns(settings.analytics_tumbling_s)
        specs = [
            WindowSpec("tumbling", tumbling, tumbling),
            WindowSpec(
                "hopping",
                seconds_to_ns(settings.analytics_hopping_size_s),
                seconds_to_ns(settings.analytics_hopping_step_s),
            ),
        ]
        engine = AlertEngine(rules.rules)
        grace = seconds_to_ns(settings.analytics_grace_s)
        future = seconds_to_ns(settings.analytics_max_future_s)
        labels, sources = settings.analytics_max_labels, settings.analytics_max_sources
        topic = settings.topic
        camera = CameraConfig(
            person_label=settings.analytics_person_label,
            min_score=settings.analytics_min_score,
            person_area=settings.analytics_person_area,
        )
        return {
            "camera": Processor(
                "camera",
                {
                    topic(Topic.DETECTIONS): DetectionResult,
                    topic(Topic.SEGMENTS): SegmentResult,
                },
                specs,
                grace,
                engine,
                camera=camera,
                max_future_ns=future,
                max_labels=labels,
                max_sources=sources,
            ),  # fmt: skip
            "text": Processor(
                "text",
                {topic(Topic.SENTIMENT): SentimentResult},
                specs,
                grace,
                engine,
                score=settings.analytics_sentiment_score,
                max_future_ns=future,
                max_labels=labels,
                max_sources=sources,
            ),  # fmt: skip
        }

    # -- agents and timers ------------------------------------------------------------------

    async def _camera_agent(self, stream: Any) -> None:
        await self._consume("camera", stream)

    async def _text_agent(self, stream: Any) -> None:
        await self._consume("text", stream)

    async def _consume(self, kind: Kind, stream: Any) -> None:
        s = self.settings
        async for events in stream.take_events(s.analytics_batch_max, s.analytics_batch_wait_s):
            records = [
                InRecord(
                    ev.message.topic,
                    ev.message.partition,
                    ev.message.offset,
                    ev.message.key,
                    ev.message.value,
                    tuple(ev.message.headers or ()),
                )
                for ev in events
            ]
            if self.settings.delivery == "at-least-once":
                self._check_gaps(records)
            try:
                async with self._lock(kind):
                    table = self.tables[kind].data
                    out = self.processors[kind].process(records, table, time.time())
                    await self._deliver(kind, out)
            except Exception as exc:  # a delivery that never completes, or a bug
                # the rows in memory may already hold this batch: stop, and let a restart
                # resume from the changelog and the committed offsets
                log.critical("%s agent failed, stopping the app: %r", kind, exc)
                await self.app.crash(exc)
                raise

    async def _tick(self) -> None:
        now = time.time()
        for kind in KINDS:
            async with self._lock(kind):
                store = self.tables[kind].data
                mine = self._owned(kind)
                rows = {k: v for k, v in store.items() if int(v["p"]) in mine}
                s = self.settings
                out = self.processors[kind].tick(
                    rows, now, s.analytics_idle_close_s, s.analytics_source_ttl_s
                )
                if out.rows or out.windows or out.alerts:
                    await self._deliver(kind, out)
                self._forget(kind, out.forget, rows)
                self.status.sources[kind] = len(rows)
                ametrics.SOURCES.labels(self.service, kind).set(len(rows))
        self.status.ticks += 1

    async def _on_recover(self) -> None:
        """After every rebalance's recovery: drop rows of partitions no longer ours, report the
        recovered state, and republish every row's totals (Redis may be behind the table).

        Every table calls this after the same recovery; the first call does the work."""
        generation = self.app.consumer_generation_id
        if generation == self._recovered_generation:
            return
        self._recovered_generation = generation
        self._next_offset.clear()  # positions restart at the committed offsets
        total = 0
        for kind in KINDS:
            store = self.tables[kind].data
            mine = self._owned(kind)
            for key in [k for k, v in store.items() if int(v["p"]) not in mine]:
                del store[key]
            proc = self.processors[kind]
            for source, d in store.items():
                row = SourceState(d)
                total += row.events
                if self.publisher is not None:
                    self.publisher.put_totals(
                        kind, source, proc.values(row), row.events, int(d["late"]), row.stream_ns
                    )
            self.status.sources[kind] = len(store)
        st = self.status
        st.table_events = total
        st.recoveries += 1
        if not st.recovered:
            st.recovery_s = time.monotonic() - st.started
            ametrics.RECOVERY_SECONDS.labels(self.service).set(st.recovery_s)
        st.recovered = True
        log.info(
            "tables recovered (%d sources, %d events) %.2f s after start",
            sum(st.sources.values()), total, time.monotonic() - st.started,
        )  # fmt: skip

    # -- delivery -------------------------------------------------------------------------------

    async def _deliver(self, kind: Kind, out: Outcome) -> None:
        for rec, exc in out.dead:
            await self._dead_letter(rec, exc)
        pending = []
        for stat in out.windows:
            key = stat.source_id.encode()
            pending.append(await self.outputs[kind].send(key=key, value=encode(stat)))
        for alert in out.alerts:
            log.warning("alert %s on %s: %s", alert.rule, alert.source_id, alert.message)
            key = alert.source_id.encode()
            pending.append(await self.alerts_topic.send(key=key, value=encode(alert)))
        if pending:  # outputs first: a row never records a window that was not delivered
            limit = self.settings.analytics_producer_request_timeout_s + 10
            self.status.waiting[kind] = time.monotonic()
            try:
                await asyncio.wait_for(asyncio.gather(*pending), limit)
            except TimeoutError as exc:
                msg = f"{len(pending)} {kind} outputs not acknowledged within {limit:g} s"
                raise AnalyticsError(msg) from exc
            finally:
                self.status.waiting.pop(kind, None)
        table = self.tables[kind]
        for source, row in out.rows.items():
            table.send_changelog(row.partition, source, row.d)
        self._account(kind, out)

    def _forget(self, kind: Kind, sources: list[str], rows: dict[str, Any]) -> None:
        """Drop silent sources: from the table, with a tombstone on the changelog (a restart
        does not bring them back); their Redis hash expires on its own."""
        if not sources:
            return
        table = self.tables[kind]
        for source in sources:
            table.send_changelog(int(rows[source]["p"]), source, None, value_serializer="raw")
            del table.data[source]
            del rows[source]
        self.status.forgotten += len(sources)
        log.info("%d %s sources silent for %g s forgotten", len(sources), kind,
                 self.settings.analytics_source_ttl_s)  # fmt: skip

    def _check_gaps(self, records: list[InRecord]) -> None:
        """Count input offsets the consumer skipped. Workers running at-least-once write the
        result topics without transactions, so their offsets are contiguous; Faust 0.15 was
        seen to skip a record while it seeks to the committed offsets after a recovery
        (docs/analytics.md). With exactly-once workers, commit markers and aborted records
        take offsets too, so gaps are normal and not counted."""
        nxt = self._next_offset
        for rec in records:
            key = (rec.topic, rec.partition)
            expected = nxt.get(key)
            if expected is not None and rec.offset > expected:
                n = rec.offset - expected
                self.status.gaps += n
                ametrics.GAPS.labels(self.service, rec.topic).inc(n)
                log.warning(
                    "%s[%d]@%d..%d: %d input records were never delivered to the agent",
                    rec.topic, rec.partition, expected, rec.offset - 1, n,
                )  # fmt: skip
            if expected is None or rec.offset >= expected:
                nxt[key] = rec.offset + 1

    def _account(self, kind: Kind, out: Outcome) -> None:
        st, svc = self.status, self.service
        for topic_name, n in out.consumed.items():
            metrics.MESSAGES_CONSUMED.labels(svc, topic_name).inc(n)
        for topic_name, n in out.duplicates.items():
            ametrics.DUPLICATES.labels(svc, topic_name).inc(n)
            st.duplicates += n
        if out.applied:
            ametrics.EVENTS.labels(svc, kind).inc(out.applied)
        if out.late:
            ametrics.LATE.labels(svc, kind).inc(out.late)
        for name, counter in (("labels_over", ametrics.LABELS_OVER),
                              ("sources_over", ametrics.SOURCES_OVER)):  # fmt: skip
            if n := getattr(out, name):
                counter.labels(svc, kind).inc(n)
                setattr(st, name, getattr(st, name) + n)
        st.events += out.applied
        st.table_events += out.applied
        st.late += out.late
        st.windows += len(out.windows)
        st.alerts += len(out.alerts)
        for stat in out.windows:
            ametrics.WINDOWS.labels(svc, kind, stat.window).inc()
        for alert in out.alerts:
            ametrics.ALERTS.labels(svc, alert.rule).inc()
        pub = self.publisher
        if pub is None:
            return
        for stat in out.windows:
            pub.put_window(stat)
        for alert in out.alerts:
            pub.put_alert(alert)
        proc = self.processors[kind]
        for source, row in out.rows.items():
            pub.put_totals(
                kind, source, proc.values(row), row.events, int(row.d["late"]), row.stream_ns
            )

    async def _dead_letter(self, rec: InRecord, exc: Exception) -> None:
        info = DeadLetterInfo.describe(
            exc, topic=rec.topic, partition=rec.partition, offset=rec.offset, service=self.service
        )
        target = dlq_topic(rec.topic)
        log.warning("%s -> %s: %s: %s", rec.where, target, info.error_class, info.error_message)
        metrics.DLQ_TOTAL.labels(self.service, rec.topic, info.error_class).inc()
        self.status.dead_lettered += 1
        topic = self._dlq.get(target)
        if topic is None:
            topic = self._dlq[target] = self._raw_topic(target)
        headers = [*rec.headers, *info.to_kafka_headers()]
        await topic.send(key=rec.key, value=rec.value, headers=headers)

    # -- helpers --------------------------------------------------------------------------------

    def _raw_topic(self, *names: str) -> Any:
        """Keys and values as bytes: decoding is ours, so a bad message is a dead letter."""
        return self.app.topic(*names, key_serializer="raw", value_serializer="raw")

    def _lock(self, kind: str) -> asyncio.Lock:
        lock = self._locks.get(kind)
        if lock is None:
            lock = self._locks[kind] = asyncio.Lock()
        return lock

    def _owned(self, kind: Kind) -> set[int]:
        """Input partitions of ``kind`` assigned to this worker (its rows' partitions)."""
        inputs = self.processors[kind].inputs
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic in inputs}

    def health(self) -> tuple[bool, dict[str, Any]]:
        ok, detail = self.status.report(self.service, bool(getattr(self.app, "crashed", False)))
        if self.publisher is not None:
            redis_ok, redis_detail = self.publisher.health(STALLED_AFTER_S)
            ok, detail = ok and redis_ok, {**detail, **redis_detail}
        return ok, detail


def _closer(publisher: RedisPublisher) -> Any:
    """A mode service whose only job is the last Redis flush when the app stops."""
    from mode import Service

    class RedisFlushOnStop(Service):
        async def on_stop(self) -> None:
            await publisher.close()

    return RedisFlushOnStop()
