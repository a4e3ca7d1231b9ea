from __future__ import annotations

import ssl

import faust
import pytest

from streamsense.services.analytics.settings import AnalyticsSettings
from streamsense.services.exceptions import ConfigError


def test_faust_config_maps_the_shared_connection_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMSENSE_KAFKA_BOOTSTRAP", "b1:9092, b2:9093")
    monkeypatch.setenv("STREAMSENSE_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("STREAMSENSE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STREAMSENSE_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("STREAMSENSE_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("STREAMSENSE_ANALYTICS_APP_ID", "ana-1")
    monkeypatch.setenv("STREAMSENSE_KAFKA_GROUP_INSTANCE_ID", "ana-1-0")
    monkeypatch.setenv("STREAMSENSE_HOME", "/data")
    s = AnalyticsSettings()
    conf = s.faust_config(replication_factor=3)
    assert conf["broker"] == ["kafka://b1:9092", "kafka://b2:9093"]
    assert conf["store"] == "memory://" and conf["web_enabled"] is False
    assert conf["datadir"] == "/data/analytics/ana-1"
    assert conf["topic_replication_factor"] == 3
    assert conf["consumer_group_instance_id"] == "ana-1-0"
    assert conf["processing_guarantee"] == "at_least_once"
    creds = conf["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.mechanism.value) == (
        "svc",
        "s3cret",
        "SCRAM-SHA-512",
    )
    assert creds.ssl_context is None
    # the Faust app accepts the whole mapping
    app = faust.App("settings-test", **conf)
    assert app.conf.broker_session_timeout == s.kafka_session_timeout_ms / 1000 == 30.0
    assert app.conf.consumer_max_fetch_size == s.analytics_max_message_bytes


def test_tls_settings_become_an_ssl_context() -> None:
    s = AnalyticsSettings(kafka_security_protocol="SSL", kafka_ssl_endpoint_identification=False)
    creds = s.faust_credentials()
    assert isinstance(creds, faust.SSLCredentials)
    assert isinstance(creds.context, ssl.SSLContext) and creds.context.check_hostname is False
    assert AnalyticsSettings().faust_credentials() is None


def test_window_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="HOPPING_STEP_S"):
        AnalyticsSettings(analytics_hopping_size_s=5, analytics_hopping_step_s=10)
