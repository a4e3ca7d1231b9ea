"""Settings of the analytics app (``STREAMSENSE_ANALYTICS_*`` and the shared ``STREAMSENSE_*``).

:meth:`AnalyticsSettings.faust_config` maps the shared Kafka connection settings (written for
librdkafka) onto what Faust/aiokafka expects: a ``kafka://`` broker URL list, SASL credentials
and an :class:`ssl.SSLContext`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from streamsense.services.analytics.windows import NS
from streamsense.services.exceptions import ConfigError
from streamsense.services.settings import StreamsenseSettings

ProcessingGuarantee = Literal["at_least_once", "exactly_once"]
#: The consumer's broker URL scheme: Faust's aiokafka transport reading read_committed
#: (services/analytics/transport.py registers it).
READ_COMMITTED_SCHEME = "streamsense-rc"

#: Most hopping windows one event may fall in (``HOPPING_SIZE_S / HOPPING_STEP_S``).
MAX_WINDOWS_PER_EVENT = 1000


def seconds_to_ns(seconds: float) -> int:
    return int(round(seconds * NS))


#: ``STREAMSENSE_KAFKA_EXTRA`` properties (librdkafka names) that have a Faust/aiokafka
#: equivalent: Faust setting and the factor from the librdkafka unit (ms -> s).
FAUST_EQUIVALENTS: dict[str, tuple[tuple[str, ...], float | None]] = {
    "client.id": (("broker_client_id",), None),
    "request.timeout.ms": (("broker_request_timeout",), 1e-3),
    "heartbeat.interval.ms": (("broker_heartbeat_interval",), 1e-3),
    "max.poll.interval.ms": (("broker_max_poll_interval",), 1e-3),
    "session.timeout.ms": (("broker_session_timeout",), 1e-3),
    "group.instance.id": (("consumer_group_instance_id",), None),
    "max.partition.fetch.bytes": (("consumer_max_fetch_size",), 1),
    "message.max.bytes": (("producer_max_request_size",), 1),
    "compression.type": (("producer_compression_type",), None),
    "linger.ms": (("producer_linger",), 1e-3),
    "batch.size": (("producer_max_batch_size",), 1),
    "metadata.max.age.ms": (("consumer_metadata_max_age_ms", "producer_metadata_max_age_ms"), 1),
    "connections.max.idle.ms": (
        ("consumer_connections_max_idle_ms", "producer_connections_max_idle_ms"),
        1,
    ),
}


def faust_extra(extra: dict[str, str | int | float | bool]) -> dict[str, Any]:
    """``STREAMSENSE_KAFKA_EXTRA`` translated for Faust; a property without an equivalent is
    a ConfigError (silently ignoring it would run analytics with other settings than asked)."""
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if key not in FAUST_EQUIVALENTS:
            msg = (
                f"STREAMSENSE_KAFKA_EXTRA property {key!r} has no equivalent in the analytics "
                f"app (Faust/aiokafka); it supports {', '.join(sorted(FAUST_EQUIVALENTS))}"
            )
            raise ConfigError(msg)
        names, factor = FAUST_EQUIVALENTS[key]
        converted = value if factor is None else float(value) * factor
        if factor == 1:
            converted = int(value)
        for name in names:
            out[name] = converted
    return out


class AnalyticsSettings(StreamsenseSettings):
    service_name: str = "analytics"
    """name in logs and metrics, and the Kafka client id"""
    kafka_session_timeout_ms: int = Field(
        default=30_000,
        ge=6_000,
        le=300_000,
        description="how long the group waits for a silent Faust worker before it reassigns "
        "its partitions (ms; Faust's own default, the batch loop's services wait 10 s)",
    )

    analytics_app_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Faust app id (consumer group, changelog topic names); "
        "default <topic prefix>streamsense-analytics",
    )
    analytics_rules: Path | None = Field(default=None, description="alert rules YAML")

    # -- windows (event time: the result's capture time, else its produced time) --------------
    analytics_tumbling_s: float = Field(default=10.0, gt=0)
    """length of the tumbling windows (s, event time)"""
    analytics_hopping_size_s: float = Field(default=60.0, gt=0)
    """length of the hopping windows (s, event time)"""
    analytics_hopping_step_s: float = Field(default=10.0, gt=0)
    """step between hopping windows (s)"""
    analytics_grace_s: float = Field(
        default=2.0, ge=0, description="event-time lateness accepted before a window closes"
    )
    analytics_max_future_s: float = Field(
        default=300.0,
        gt=0,
        description="a result whose event time is further ahead of this clock is dead-lettered"
        " (it would close every window of its source for that long, so all else is late)",
    )
    analytics_idle_close_s: float = Field(
        default=30.0, gt=0, description="wall-clock silence after which a source's windows close"
    )
    analytics_tick_s: float = Field(default=1.0, gt=0, description="silence/idle timer period")
    analytics_source_ttl_s: float = Field(
        default=7 * 86_400.0,
        ge=0,
        description="a source silent this long (its windows closed) leaves the"
        " table, its changelog and its Redis hash (0: never); bounds memory when ids come and go",
    )

    # -- what counts as a person ---------------------------------------------------------------
    analytics_person_label: str = "person"
    """the detection label counted as a person"""
    analytics_min_score: float = Field(default=0.5, ge=0, le=1)
    """detections below this score are not counted"""
    analytics_person_area: float = Field(
        default=0.02, ge=0, le=1, description="segment class_areas[person] above this: present"
    )

    analytics_max_labels: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="distinct labels counted per source; detections/messages with further"
        " labels count as `labels.over` (bounds a source's table row, outputs and Redis hash)",
    )
    analytics_max_sources: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="sources (rows) a worker keeps per kind; results of further new sources are"
        " counted (`sources_over`) and not analysed until silent ones leave"
        " (STREAMSENSE_ANALYTICS_SOURCE_TTL_S): bounds memory, changelog and Redis under a flood"
        " of new source ids",
    )
    analytics_sentiment_score: Literal["label", "probs"] = Field(
        default="label", description="label: +1/0/-1; probs: p(positive) - p(negative)"
    )

    # -- Faust / Kafka tuning (see docs/analytics.md) -----------------------------------------
    analytics_processing_guarantee: ProcessingGuarantee = "at_least_once"
    """Faust's guarantee; `at_least_once` is the tested one (tables exact by recorded offsets)"""
    analytics_commit_interval_s: float = Field(default=2.8, gt=0)
    """how often Faust commits (bounds what a restart reads again)"""
    analytics_heartbeat_interval_s: float = Field(default=3.0, gt=0)
    """consumer heartbeat (s): under a third of the session timeout"""
    analytics_max_poll_interval_s: float = Field(default=300.0, gt=0)
    """longest gap between polls before the group evicts the app (s)"""
    analytics_producer_request_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Faust's default (1200 s) lets one lost produce request stall an agent",
    )
    analytics_max_poll_records: int = Field(default=2000, ge=1)
    """records per fetch round"""
    analytics_stream_buffer_maxsize: int = Field(default=8192, ge=1)
    """events Faust buffers per stream before it pauses fetching"""
    analytics_max_message_bytes: int = Field(default=1024 * 1024, ge=1024)
    """largest record fetched or produced (bytes)"""
    analytics_batch_max: int = Field(default=2000, ge=1, description="events per agent batch")
    analytics_batch_wait_s: float = Field(default=0.05, gt=0)
    """how long an agent waits to fill a batch (s)"""
    analytics_replication_factor: int | None = Field(
        default=None, ge=1, description="for Faust's own topics; default min(3, brokers)"
    )
    analytics_changelog_segment_ms: int = Field(
        default=600_000, ge=1000, description="changelog segment roll: bounds what compaction skips"
    )

    # -- Redis serving layer ---------------------------------------------------------------------
    analytics_redis_enabled: bool = True
    """write windows, totals and alerts to Redis"""
    analytics_redis_flush_s: float = Field(default=0.25, gt=0)
    """how often buffered Redis writes are sent (s)"""
    analytics_alerts_maxlen: int = Field(default=10_000, ge=1)
    """alerts kept in the Redis alert stream"""
    analytics_redis_max_pending: int = Field(default=100_000, ge=1)
    """alerts kept for Redis while it is down (oldest dropped, counted)"""

    @model_validator(mode="after")
    def _check_windows(self) -> AnalyticsSettings:
        if self.analytics_hopping_step_s > self.analytics_hopping_size_s:
            msg = "STREAMSENSE_ANALYTICS_HOPPING_STEP_S must not exceed HOPPING_SIZE_S"
            raise ConfigError(msg)
        # every event is added to size/step windows: a tiny step makes each event a long loop
        per_event = self.analytics_hopping_size_s / self.analytics_hopping_step_s
        if per_event > MAX_WINDOWS_PER_EVENT:
            msg = (
                f"STREAMSENSE_ANALYTICS_HOPPING_SIZE_S / HOPPING_STEP_S is {per_event:.0f}: each"
                f" event would open that many windows; at most {MAX_WINDOWS_PER_EVENT} (raise the"
                " step)"
            )
            raise ConfigError(msg)
        for name in ("tumbling_s", "hopping_size_s", "hopping_step_s"):
            if seconds_to_ns(getattr(self, f"analytics_{name}")) < 1_000:
                msg = f"STREAMSENSE_ANALYTICS_{name.upper()} must be at least 1 microsecond"
                raise ConfigError(msg)
        return self

    @property
    def app_id(self) -> str:
        """Faust names its consumer group and internal topics after this: it carries the topic
        prefix by default so deployments with different prefixes never share state."""
        return self.analytics_app_id or f"{self.topic_prefix}streamsense-analytics"

    @property
    def datadir(self) -> Path:
        return self.home / "analytics" / self.app_id

    # -- Faust mapping ---------------------------------------------------------------------------

    def faust_broker(self, scheme: str = "kafka") -> list[str]:
        """``host:port,host:port`` -> ``["kafka://host:port", ...]``."""
        hosts = [h.strip() for h in self.kafka_bootstrap.split(",") if h.strip()]
        if not hosts:
            msg = "STREAMSENSE_KAFKA_BOOTSTRAP is empty"
            raise ConfigError(msg)
        return [f"{scheme}://{h}" for h in hosts]

    def faust_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context librdkafka would build from ``kafka_ssl_*`` (None without TLS)."""
        if self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            return None
        ctx = ssl.create_default_context(
            purpose=ssl.Purpose.SERVER_AUTH,
            cafile=str(self.kafka_ssl_ca_location) if self.kafka_ssl_ca_location else None,
        )
        if self.kafka_ssl_certificate_location:
            password = self.kafka_ssl_key_password
            ctx.load_cert_chain(
                str(self.kafka_ssl_certificate_location),
                str(self.kafka_ssl_key_location) if self.kafka_ssl_key_location else None,
                password.get_secret_value() if password else None,
            )
        if not self.kafka_ssl_endpoint_identification:
            ctx.check_hostname = False
        return ctx

    def faust_credentials(self) -> Any:
        """``faust.SASLCredentials`` / ``faust.SSLCredentials`` or None for PLAINTEXT."""
        import faust

        ctx = self.faust_ssl_context()
        if self.kafka_security_protocol.startswith("SASL"):
            password = self.kafka_sasl_password
            return faust.SASLCredentials(
                username=self.kafka_sasl_username,
                password=password.get_secret_value() if password else None,
                ssl_context=ctx,
                mechanism=self.kafka_sasl_mechanism,
            )
        if ctx is not None:
            return faust.SSLCredentials(ctx)
        return None

    def faust_config(self, replication_factor: int = 1) -> dict[str, Any]:
        """Keyword arguments for :class:`faust.App` (the reasons are in docs/analytics.md).

        ``replication_factor`` is for the topics Faust creates (changelogs, the assignor's);
        the app passes ``analytics_replication_factor`` or ``min(3, brokers)``.
        """
        conf: dict[str, Any] = {
            "broker": self.faust_broker(),
            # results are written in transactions: read committed ones only (transport.py)
            "broker_consumer": self.faust_broker(READ_COMMITTED_SCHEME),
            "broker_client_id": self.service_name,
            "store": "memory://",
            "datadir": str(self.datadir),
            "web_enabled": False,
            "topic_replication_factor": replication_factor,
            "topic_allow_declare": True,
            "processing_guarantee": self.analytics_processing_guarantee,
            "broker_commit_interval": self.analytics_commit_interval_s,
            "broker_session_timeout": self.kafka_session_timeout_ms / 1000,
            "broker_heartbeat_interval": self.analytics_heartbeat_interval_s,
            "broker_max_poll_interval": self.analytics_max_poll_interval_s,
            "broker_max_poll_records": self.analytics_max_poll_records,
            "stream_buffer_maxsize": self.analytics_stream_buffer_maxsize,
            "consumer_max_fetch_size": self.analytics_max_message_bytes,
            "producer_max_request_size": self.analytics_max_message_bytes,
            "consumer_auto_offset_reset": "earliest",
            "producer_acks": -1,
            "producer_request_timeout": self.analytics_producer_request_timeout_s,
            "stream_wait_empty": True,
            "table_standby_replicas": 0,
            "worker_redirect_stdouts": False,
        }
        if self.kafka_group_instance_id:
            conf["consumer_group_instance_id"] = self.kafka_group_instance_id
        conf.update(faust_extra(self.kafka_extra))
        creds = self.faust_credentials()
        if creds is not None:
            conf["broker_credentials"] = creds
        return conf
