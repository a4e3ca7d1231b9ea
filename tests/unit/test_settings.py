from __future__ import annotations

import pytest

from streamsense.services.exceptions import ConfigError
from streamsense.services.settings import StreamsenseSettings


def test_env_prefix_and_librdkafka_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMSENSE_KAFKA_BOOTSTRAP", "broker:9093")
    monkeypatch.setenv("STREAMSENSE_TOPIC_PREFIX", "prod.")
    monkeypatch.setenv("STREAMSENSE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAMSENSE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STREAMSENSE_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("STREAMSENSE_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("STREAMSENSE_KAFKA_SSL_CA_LOCATION", "/etc/ca.pem")
    s = StreamsenseSettings()
    conf = s.librdkafka_config()
    assert conf["bootstrap.servers"] == "broker:9093"
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.password"] == "s3cret"
    assert conf["ssl.ca.location"] == "/etc/ca.pem"
    assert s.topic("frames") == "prod.frames"
    assert "s3cret" not in repr(s)


def test_sasl_without_credentials_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="SASL_MECHANISM"):
        StreamsenseSettings(kafka_security_protocol="SASL_SSL")


def test_settings_are_frozen() -> None:
    s = StreamsenseSettings()
    with pytest.raises(ValueError, match="frozen"):
        s.kafka_bootstrap = "x"  # type: ignore[misc]


def test_extra_librdkafka_properties_apply_last() -> None:
    s = StreamsenseSettings(kafka_extra={"client.id": "custom", "socket.timeout.ms": 1000})
    conf = s.librdkafka_config()
    assert conf["client.id"] == "custom"
    assert conf["socket.timeout.ms"] == 1000
