"""docker-compose.yml, Prometheus and Grafana: commands, configuration, start-up order, ports and
metric names agree with the CLI, the image and each other."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_facts import (
    ALL_COMMANDS,
    DEPLOY,
    JOB_COMMANDS,
    METRIC_RE,
    METRICS,
    ROOT,
    SERVICE_COMMANDS,
    THIRD_PARTY_ENV,
    command_key,
    metric_base,
)

Services = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> Services:
    return compose["services"]


@pytest.fixture(scope="module")
def app_services(services: Services) -> Services:
    """The services that run the streamsense image."""
    return {n: s for n, s in services.items() if "deploy/docker/Dockerfile" in str(s.get("build"))}


def test_every_cli_command_runs_and_nothing_else(app_services: Services) -> None:
    seen = set()
    for name, svc in app_services.items():
        key = command_key(svc["command"])
        assert key in ALL_COMMANDS, f"{name}: {svc['command']} is not a streamsense command"
        seen.add(key)
    assert seen == ALL_COMMANDS


def test_producers_use_the_sample_data(app_services: Services) -> None:
    camera = app_services["producer-camera"]["command"]
    assert camera[camera.index("--source") + 1] == "/data/sample.mp4"
    assert "--loop" in camera and "--camera-id" in camera
    text = app_services["producer-text"]["command"]
    assert text[text.index("--path") + 1] == "/data/*.log" and "--follow" in text
    assert app_services["samples"]["command"] == ["samples", "make", "/data"]
    for name in ("producer-camera", "producer-text", "samples"):
        assert "data:/data" in app_services[name]["volumes"]


def test_configuration_only_through_streamsense_variables(app_services: Services) -> None:
    for name, svc in app_services.items():
        for var in svc["environment"]:
            assert var.startswith("STREAMSENSE_") or var in THIRD_PARTY_ENV, f"{name}: {var}"
        env = svc["environment"]
        assert env["STREAMSENSE_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["STREAMSENSE_REDIS_URL"].startswith("redis://redis:6379/")
        assert env["STREAMSENSE_MODEL_STORE"] == "/models"
        assert "models:/models" in svc["volumes"]


def test_third_party_services_are_configured_by_their_own_variables(services: Services) -> None:
    prefixes = {"kafka": ("KAFKA_", "CLUSTER_ID"), "grafana": ("GF_",)}
    for name, allowed in prefixes.items():
        for var in services[name]["environment"]:
            assert var.startswith(allowed), f"{name}: {var}"


def test_kafka_is_a_single_kraft_node_reachable_as_configured(services: Services) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # the topics job provisions
    assert len(env["CLUSTER_ID"]) == 22  # a base64url UUID, as kafka-storage format wants
    external = next(u for u in env["KAFKA_ADVERTISED_LISTENERS"].split(",") if "EXTERNAL" in u)
    assert f"{external.rsplit(':', 1)[1]}:9094" in kafka["ports"]


def test_kafka_version_matches_the_local_stack() -> None:
    pom = ROOT / "deploy" / "local" / "pom.xml"
    if not pom.exists():
        pytest.skip("deploy/local/pom.xml not in this checkout")
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    assert match, "pom.xml has no kafka.version property"
    image = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{match.group(1)}", "compose and the local stack run one Kafka"


def test_start_up_order(services: Services, app_services: Services) -> None:
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            target = services[dep]
            if spec["condition"] == "service_healthy":
                assert "test" in target["healthcheck"], f"{name} waits on {dep}'s health check"
            elif spec["condition"] == "service_completed_successfully":
                assert command_key(target["command"]) in JOB_COMMANDS, f"{name} -> {dep}"
                assert target["restart"] == "no"
    for name, svc in app_services.items():
        key = command_key(svc["command"])
        deps = svc.get("depends_on") or {}
        if key in JOB_COMMANDS:
            assert svc["restart"] == "no" and svc["healthcheck"] == {"disable": True}
            continue
        assert key in SERVICE_COMMANDS and svc["restart"] == "unless-stopped", name
        if key[0] != "gateway":  # the gateway only reads Redis
            assert deps["topics"]["condition"] == "service_completed_successfully", name
        if key[0] in ("worker", "learner"):
            assert deps["models-fetch"]["condition"] == "service_completed_successfully", name
        if key in {("sink", "redis"), ("gateway",)}:
            assert deps["redis"]["condition"] == "service_healthy", name
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_workers_scale_and_gpu_profile_reserves_gpus(app_services: Services) -> None:
    workers = {n: s for n, s in app_services.items() if s["command"][0] == "worker"}
    assert {"worker-detect", "worker-segment", "worker-sentiment"} <= set(workers)
    for name, svc in workers.items():
        assert "container_name" not in svc and "ports" not in svc, f"{name} must scale"
        gpu = name.endswith("-gpu")
        assert svc["build"]["args"]["TF_EXTRA"] == ("gpu" if gpu else "cpu")
        if gpu:
            assert svc["profiles"] == ["gpu"]
            (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
            assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
            assert svc["image"] != app_services["worker-detect"]["image"]
        else:
            assert "profiles" not in svc
    assert {s["command"][1] for n, s in workers.items() if n.endswith("-gpu")} == {
        "detect",
        "segment",
    }


def test_gateway_port_and_token(app_services: Services) -> None:
    gw = app_services["gateway"]
    env = gw["environment"]
    assert env["STREAMSENSE_GATEWAY_HOST"] == "0.0.0.0"
    published = "${STREAMSENSE_GATEWAY_PUBLISH:-8000}"
    assert gw["ports"] == [f"{published}:{env['STREAMSENSE_GATEWAY_PORT']}"]
    assert env["STREAMSENSE_GATEWAY_TOKEN"].startswith("${STREAMSENSE_GATEWAY_TOKEN")


def test_bind_mounts_exist(services: Services) -> None:
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name}: {src}"


# ---------------------------------------------------------------- Prometheus


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())


def test_prometheus_scrapes_every_long_running_service(prometheus, app_services) -> None:
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "streamsense")
    (sd,) = job["dns_sd_configs"]
    long_running = {
        n for n, s in app_services.items() if command_key(s["command"]) in SERVICE_COMMANDS
    }
    assert set(sd["names"]) == long_running
    ports = {s["environment"]["STREAMSENSE_METRICS_PORT"] for s in app_services.values()}
    assert ports == {str(sd["port"])}
    assert "/etc/prometheus/alerts.yml" in prometheus["rule_files"]


def _exprs_metrics(exprs: list[str]) -> set[str]:
    return {metric_base(m) for e in exprs for m in METRIC_RE.findall(e)}


def _known_bases() -> set[str]:
    return {metric_base(m) for m in METRICS}


def test_alert_rules_use_exported_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert exprs and all(r.get("alert") for g in rules["groups"] for r in g["rules"])
    used = _exprs_metrics(exprs)
    assert used <= _known_bases(), used - _known_bases()
    assert {"streamsense_dlq_total", "streamsense_consumer_lag"} <= used


# ---------------------------------------------------------------- Grafana


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "streamsense.json").read_text())


def _targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_shows_throughput_latency_lag_and_dlq(dashboard) -> None:
    exprs = [t["expr"] for t in _targets(dashboard)]
    used = _exprs_metrics(exprs)
    known = _known_bases()
    assert used == known, f"missing {known - used}, unknown {used - known}"
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for word in ("consumed", "produced", "latency", "lag", "dlq", "batch"):
        assert word in titles
    # histograms are read as quantiles or means, never as raw buckets without rate()
    for e in exprs:
        if "_bucket" in e:
            assert "histogram_quantile(" in e and "rate(" in e


def test_dashboard_is_well_formed(dashboard) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24
    assert dashboard["uid"] and dashboard["templating"]["list"][0]["name"] == "service"
    for t in _targets(dashboard):
        assert 'service=~"$service"' in t["expr"]


def test_dashboard_provisioning_matches_compose(dashboard, services: Services) -> None:
    prov = DEPLOY / "grafana" / "provisioning"
    (source,) = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in services
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    uids |= {t["datasource"]["uid"] for t in _targets(dashboard)}
    assert uids == {source["uid"]}
    (provider,) = yaml.safe_load((prov / "dashboards" / "streamsense.yml").read_text())["providers"]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


def test_metric_names_exist_in_the_application() -> None:
    """The dashboard's names against services/observability/metrics.py, where it exists."""
    try:
        from prometheus_client import REGISTRY

        import streamsense.services.observability.metrics  # noqa: F401 - registers the metrics
    except ImportError as exc:
        pytest.skip(f"application metrics not importable: {exc}")
    exported = {
        s.name for m in REGISTRY.collect() for s in m.samples if s.name.startswith("streamsense_")
    } | {
        m.name + ("_total" if m.type == "counter" else "")
        for m in REGISTRY.collect()
        if m.name.startswith("streamsense_")
    }
    missing = {m for m in METRICS if m not in exported}
    assert not missing, f"dashboard metrics the services do not export: {missing}"
