"""Settings shared by every service; each service subclasses :class:`StreamsenseSettings`.

Values come from ``STREAMSENSE_*`` environment variables (or keyword arguments), are validated
once, and are frozen. Only this module reads the environment, and only when a settings object
is constructed, never at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamsense.services.exceptions import ConfigError

#: What a Redis key prefix may hold (deployments that share one Redis each use their own).
REDIS_PREFIX_PATTERN = r"^[A-Za-z0-9._-]+$"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


#: librdkafka log facilities that repeat, on every reconnect attempt, what a client's error
#: callback reports once per state change (services/kafka/clientlog.py).
_CONNECTION_FACILITIES = frozenset({"FAIL", "BROKERFAIL", "ERROR", "REQTMOUT", "CONNECT"})


class LibrdkafkaLog:
    """Where every librdkafka client logs: the ``streamsense.librdkafka`` logger, connection
    noise at DEBUG (several lines a second while a broker is down), the rest as it comes."""

    def __init__(self, client: str) -> None:
        self._log = logging.getLogger(f"streamsense.librdkafka.{client}")

    def log(self, level: int, fmt: str, fac: str, *args: Any) -> None:
        self._log.log(logging.DEBUG if fac in _CONNECTION_FACILITIES else level, fmt, fac, *args)


def default_home() -> Path:
    """Where streamsense keeps caches, the local stack and the model store by default."""
    return Path.home() / ".cache" / "streamsense"


class StreamsenseSettings(BaseSettings):
    """Connection settings every service needs. ``STREAMSENSE_`` prefix, e.g.
    ``STREAMSENSE_KAFKA_BOOTSTRAP=127.0.0.1:9092``."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMSENSE_", frozen=True, extra="ignore", use_attribute_docstrings=True
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    """Kafka bootstrap servers, `host:port[,host:port...]`"""
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    """Redis of the serving layer; a password goes in the URL: `redis://:pw@host:6379/0`"""
    redis_prefix: str = Field(
        default="ss", pattern=REDIS_PREFIX_PATTERN, description="prefix of every Redis key"
    )
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    """prefix of every topic (and of the default consumer groups), e.g. `prod.`"""
    home: Path = Field(default_factory=default_home)
    """caches, checkpoints, the local stack and, by default, the model store"""
    model_store: Path | None = Field(default=None, description="default: <home>/models")

    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    """`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`"""
    kafka_sasl_mechanism: SaslMechanism | None = None
    """`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with a SASL protocol)"""
    kafka_sasl_username: str | None = None
    """SASL user"""
    kafka_sasl_password: SecretStr | None = None
    """SASL password (never logged)"""
    kafka_ssl_ca_location: Path | None = None
    """CA bundle that signed the brokers' certificates (TLS)"""
    kafka_ssl_certificate_location: Path | None = None
    """client certificate (mutual TLS)"""
    kafka_ssl_key_location: Path | None = None
    """client key (mutual TLS)"""
    kafka_ssl_key_password: SecretStr | None = None
    """password of the client key"""
    kafka_ssl_endpoint_identification: bool = True
    """check that a broker's certificate names its host"""
    kafka_group_instance_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="static group membership (e.g. the pod name): a consumer restarted within "
        "the session timeout gets its partitions back without a rebalance",
    )
    kafka_session_timeout_ms: int = Field(
        # 10 s: a killed consumer's partitions are served again within ~15 s (librdkafka
        # heartbeats every 3 s from its own thread, so a busy Python process is not mistaken
        # for a dead one)
        default=10_000,
        ge=6_000,
        le=300_000,
        description="how long the group waits for a silent consumer before it reassigns "
        "its partitions (ms)",
    )
    kafka_extra: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """any librdkafka property, applied last, as JSON: `{"socket.timeout.ms": 1000}`"""
    delivery: Literal["exactly-once", "at-least-once"] = Field(
        # the default since bench pipeline measured its cost: throughput ratio 1.00 (sentiment)
        # and 0.97 (detect) to at-least-once; p50 +10 ms at 200 lines/s (docs/reliability.md)
        default="exactly-once",
        description="consuming services: exactly-once commits each round of results, dead "
        "letters and consumed offsets in one Kafka transaction; at-least-once may repeat "
        "outputs after a crash",
    )
    kafka_transaction_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        le=900_000,
        description="exactly-once: a transaction of a process that died is aborted after this "
        "long (plus the broker's transaction.abort.timed.out.transaction.cleanup.interval.ms), "
        "and read_committed readers of its partitions wait that much (ms)",
    )
    kafka_unreachable_grace_s: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description="how long Kafka may be unreachable before health turns red (s)",
    )

    service_name: str = "streamsense"
    """name in logs and metrics, and the Kafka client id (each service sets its own)"""
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="health + metrics HTTP port (0 = any free)"
    )
    metrics_host: str = "127.0.0.1"
    """address of the health and metrics endpoint"""
    log_level: str = "INFO"
    """`DEBUG`, `INFO`, `WARNING` or `ERROR` (also `--log-level`)"""
    log_summary_s: float = Field(
        default=10.0,
        ge=0,
        description="a consuming service logs a one-line summary (rate, batch, lag, dead "
        "letters) this often (s); 0: never",
    )

    @model_validator(mode="after")
    def _check_security(self) -> StreamsenseSettings:
        if self.kafka_security_protocol.startswith("SASL"):
            if not (self.kafka_sasl_mechanism and self.kafka_sasl_username):
                msg = (
                    f"kafka_security_protocol={self.kafka_security_protocol} needs "
                    "STREAMSENSE_KAFKA_SASL_MECHANISM and STREAMSENSE_KAFKA_SASL_USERNAME"
                )
                raise ConfigError(msg)
            if self.kafka_sasl_password is None:
                msg = "SASL needs STREAMSENSE_KAFKA_SASL_PASSWORD"
                raise ConfigError(msg)
        return self

    @property
    def model_store_dir(self) -> Path:
        return self.model_store or self.home / "models"

    def topic(self, name: str) -> str:
        """The full topic name for a logical topic (``frames`` -> ``<prefix>frames``)."""
        return f"{self.topic_prefix}{name}"

    def group(self, role: str) -> str:
        """The default consumer group of a service role (``detect`` ->
        ``<prefix>streamsense-detect``): deployments with different topic prefixes on one
        cluster never share a group, so they never rebalance each other."""
        return f"{self.topic_prefix}streamsense-{role}"

    def librdkafka_config(self) -> dict[str, Any]:
        """The connection part of a librdkafka config (bootstrap, security, credentials)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": self.kafka_security_protocol,
            "client.id": self.service_name,
            "logger": LibrdkafkaLog(self.service_name),
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            if self.kafka_ssl_ca_location:
                conf["ssl.ca.location"] = str(self.kafka_ssl_ca_location)
            if self.kafka_ssl_certificate_location:
                conf["ssl.certificate.location"] = str(self.kafka_ssl_certificate_location)
            if self.kafka_ssl_key_location:
                conf["ssl.key.location"] = str(self.kafka_ssl_key_location)
            if self.kafka_ssl_key_password is not None:
                conf["ssl.key.password"] = self.kafka_ssl_key_password.get_secret_value()
            conf["ssl.endpoint.identification.algorithm"] = (
                "https" if self.kafka_ssl_endpoint_identification else "none"
            )
        conf.update(self.kafka_extra)
        return conf
