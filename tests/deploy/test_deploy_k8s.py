"""Kubernetes: the rendered overlays (from deploy/validate.sh) agree with the CLI, the image,
the consumer groups and topic partitions, and with each other (secrets, ports, KEDA, Strimzi)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deploy_facts import (
    ALL_COMMANDS,
    JOB_COMMANDS,
    SERVICE_COMMANDS,
    THIRD_PARTY_ENV,
    WORKERS,
    command_key,
    topic_partitions,
)

pytestmark = pytest.mark.slow

Doc = dict[str, Any]
APP_OVERLAYS = ("base", "cpu", "gpu")


def kinds(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: Doc) -> Doc:
    return doc["spec"]["template"]["spec"]


def app_container(doc: Doc) -> Doc:
    (container,) = [c for c in pod_spec(doc)["containers"] if c["name"] == "streamsense"]
    return container


def config(docs: list[Doc]) -> dict[str, str]:
    return kinds(docs, "ConfigMap")["streamsense-config"]["data"]


@pytest.fixture(scope="module", params=APP_OVERLAYS)
def docs(request: pytest.FixtureRequest, rendered: dict[str, list[Doc]]) -> list[Doc]:
    return rendered[request.param]


def test_a_deployment_per_service_command(docs: list[Doc]) -> None:
    deployments = kinds(docs, "Deployment")
    commands = {
        command_key(app_container(d)["args"]): n
        for n, d in deployments.items()
        if d["metadata"]["labels"].get("app.kubernetes.io/component") != "redis"
        and any(c["name"] == "streamsense" for c in pod_spec(d)["containers"])
    }
    assert set(commands) == SERVICE_COMMANDS
    jobs = {command_key(app_container(j)["args"]) for j in kinds(docs, "Job").values()}
    assert jobs == {("topics", "create"), ("models", "fetch")}
    for name, d in deployments.items():
        for init in pod_spec(d).get("initContainers", []):
            assert command_key(init["args"]) in JOB_COMMANDS, name


def test_probes_resources_and_security(docs: list[Doc]) -> None:
    port = int(config(docs)["STREAMSENSE_METRICS_PORT"])
    workloads = {**kinds(docs, "Deployment"), **kinds(docs, "StatefulSet"), **kinds(docs, "Job")}
    for name, d in workloads.items():
        spec = pod_spec(d)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for c in spec["containers"] + spec.get("initContainers", []):
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]), f"{name}/{c['name']}"
            assert "memory" in res["limits"], f"{name}/{c['name']}"
            sec = c["securityContext"]
            assert sec["allowPrivilegeEscalation"] is False and sec["capabilities"]["drop"] == [
                "ALL"
            ]
            assert sec["readOnlyRootFilesystem"] is True
        if d["kind"] != "Deployment":
            continue
        c = app_container(d)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["metrics"] == port, name
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert c[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}, (name, probe)
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port)


def test_every_deployment_has_a_matching_pdb(docs: list[Doc]) -> None:
    pdbs = kinds(docs, "PodDisruptionBudget")
    for name, d in kinds(docs, "Deployment").items():
        pdb = pdbs[name]
        selector = pdb["spec"]["selector"]["matchLabels"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
        assert pdb["spec"].get("maxUnavailable") == 1, "drains must never block"


def test_environment_only_streamsense_variables_and_existing_refs(docs: list[Doc]) -> None:
    secrets: dict[str, dict[str, str]] = {
        n: s.get("stringData") or s.get("data") or {} for n, s in kinds(docs, "Secret").items()
    }
    configmaps = kinds(docs, "ConfigMap")
    for var in config(docs):
        assert var.startswith("STREAMSENSE_"), var
    workloads = {**kinds(docs, "Deployment"), **kinds(docs, "Job")}
    for name, d in workloads.items():
        c = app_container(d)
        for src in c.get("envFrom", []):
            assert src["configMapRef"]["name"] in configmaps, name
        for env in c.get("env", []):
            assert env["name"].startswith("STREAMSENSE_") or env["name"] in THIRD_PARTY_ENV
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets[ref["name"]], f"{name}: {ref}"
    for name, sts in kinds(docs, "StatefulSet").items():
        for c in pod_spec(sts)["containers"]:
            for env in c.get("env", []):
                ref = env["valueFrom"]["secretKeyRef"]
                assert ref["key"] in secrets[ref["name"]], f"{name}: {ref}"


def test_secrets_are_marked_placeholders(docs: list[Doc]) -> None:
    secrets = kinds(docs, "Secret")
    assert {"streamsense-kafka-sasl", "streamsense-redis", "streamsense-gateway"} <= set(secrets)
    for name, s in secrets.items():
        assert s["metadata"]["annotations"]["streamsense.io/placeholder"] == "true", name
        values = s["stringData"]
        assert any("CHANGE-ME" in v for v in values.values()), name
    redis = secrets["streamsense-redis"]["stringData"]
    assert f":{redis['password']}@streamsense-redis:6379" in redis["url"]


def test_model_store_volume(docs: list[Doc]) -> None:
    pvc = kinds(docs, "PersistentVolumeClaim")["streamsense-models"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    store = config(docs)["STREAMSENSE_MODEL_STORE"]
    writers = {"learner", "streamsense-models-fetch"}
    workloads = {**kinds(docs, "Deployment"), **kinds(docs, "Job")}
    users = set()
    for name, d in workloads.items():
        vols = {v["name"]: v for v in pod_spec(d)["volumes"]}
        for m in app_container(d).get("volumeMounts", []):
            claim = vols[m["name"]].get("persistentVolumeClaim", {}).get("claimName")
            if claim == "streamsense-models":
                users.add(name)
                assert m["mountPath"] == store
                assert m.get("readOnly", False) is (name not in writers), name
    assert users == writers | {f"worker-{w}" for w in WORKERS}


def test_gateway_service_and_ingress(docs: list[Doc]) -> None:
    gw = kinds(docs, "Deployment")["gateway"]
    ports = {p["name"]: p["containerPort"] for p in app_container(gw)["ports"]}
    assert ports["http"] == int(config(docs)["STREAMSENSE_GATEWAY_PORT"])
    svc = kinds(docs, "Service")["gateway"]
    assert svc["spec"]["selector"].items() <= gw["spec"]["template"]["metadata"]["labels"].items()
    assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]}["http"] == "http"
    ingress = kinds(docs, "Ingress")["gateway"]
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": "gateway", "port": {"name": "http"}}
    assert gw["spec"]["replicas"] >= 2
    redis = kinds(docs, "Service")["streamsense-redis"]
    assert redis["spec"]["ports"][0]["port"] == 6379


def test_keda_scales_each_worker_on_its_consumer_group(docs: list[Doc]) -> None:
    cfg = config(docs)
    partitions = topic_partitions()
    scaled = kinds(docs, "ScaledObject")
    deployments = kinds(docs, "Deployment")
    auth = kinds(docs, "TriggerAuthentication")["streamsense-kafka"]
    sasl_secret = kinds(docs, "Secret")["streamsense-kafka-sasl"]["stringData"]
    keda_sasl = {
        "PLAIN": "plaintext",
        "SCRAM-SHA-256": "scram_sha256",
        "SCRAM-SHA-512": "scram_sha512",
    }
    assert sasl_secret["sasl"] == keda_sasl[cfg["STREAMSENSE_KAFKA_SASL_MECHANISM"]]
    assert sasl_secret["tls"] == (
        "enable" if "SSL" in cfg["STREAMSENSE_KAFKA_SECURITY_PROTOCOL"] else "disable"
    )
    assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} == {
        "sasl",
        "username",
        "password",
        "tls",
    }
    host, port = cfg["STREAMSENSE_KAFKA_BOOTSTRAP"].split(":")
    namespace = deployments["gateway"]["metadata"]["namespace"]
    for worker, (group, topic) in WORKERS.items():
        name = f"worker-{worker}"
        so = scaled[name]["spec"]
        assert so["scaleTargetRef"]["name"] == name and "replicas" not in deployments[name]["spec"]
        assert 1 <= so["minReplicaCount"] <= so["maxReplicaCount"] <= partitions[topic]
        (trigger,) = so["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert meta["consumerGroup"] == group
        assert meta["topic"] == cfg["STREAMSENSE_TOPIC_PREFIX"] + topic
        assert meta["bootstrapServers"] == f"{host}.{namespace}.svc:{port}"
        assert trigger["authenticationRef"]["name"] == "streamsense-kafka"


def test_overlay_images_and_gpus(rendered: dict[str, list[Doc]]) -> None:
    gpu_workers = {"worker-detect", "worker-segment"}
    for overlay in ("cpu", "gpu"):
        for name, d in kinds(rendered[overlay], "Deployment").items():
            spec = pod_spec(d)
            image = app_container(d)["image"] if name != "streamsense-redis" else ""
            limits = app_container(d)["resources"]["limits"]
            on_gpu = overlay == "gpu" and name in gpu_workers
            assert ("nvidia.com/gpu" in limits) is on_gpu, (overlay, name)
            if on_gpu:
                assert limits["nvidia.com/gpu"] == 1
                assert image.endswith("-gpu")
                assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
                    spec["tolerations"]
                )
                assert d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
            else:
                assert image.endswith("-cpu") and "tolerations" not in spec
    assert not any("nvidia.com/gpu" in str(d) for d in rendered["cpu"])
    for overlay in ("cpu", "gpu"):  # deployable overlays pin every image
        workloads = [
            d for d in rendered[overlay] if d["kind"] in ("Deployment", "StatefulSet", "Job")
        ]
        for d in workloads:
            for c in pod_spec(d)["containers"] + pod_spec(d).get("initContainers", []):
                name, _, tag = c["image"].rpartition(":")
                assert name and tag and tag != "latest", (overlay, c["image"])


def test_strimzi_cluster_matches_the_client_settings(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["strimzi"]
    cfg = config(rendered["base"])
    (kafka,) = kinds(docs, "Kafka").values()
    cluster = kafka["metadata"]["name"]
    host, port = cfg["STREAMSENSE_KAFKA_BOOTSTRAP"].split(":")
    assert host == f"{cluster}-kafka-bootstrap"
    listener = next(x for x in kafka["spec"]["kafka"]["listeners"] if x["port"] == int(port))
    assert listener["tls"] is ("SSL" in cfg["STREAMSENSE_KAFKA_SECURITY_PROTOCOL"])
    assert listener["authentication"]["type"] == cfg["STREAMSENSE_KAFKA_SASL_MECHANISM"].lower()
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    for pool in kinds(docs, "KafkaNodePool").values():
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    (user,) = kinds(docs, "KafkaUser").values()
    secret = kinds(rendered["base"], "Secret")["streamsense-kafka-sasl"]["stringData"]
    assert user["metadata"]["name"] == secret["username"]
    assert user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"] == {
        "name": "streamsense-kafka-sasl",
        "key": "password",
    }
    namespaces = {
        d["metadata"]["namespace"] for d in docs + rendered["base"] if d["kind"] != "Namespace"
    }
    assert namespaces == {"streamsense"}


def test_cli_commands_exist_in_the_app() -> None:
    """Each command group the CLI has must contain the commands the deploy files run."""
    try:
        import typer

        from streamsense.services.cli.app import app
    except Exception as exc:  # the CLI is being written in the same tree
        pytest.skip(f"CLI not importable: {exc}")
    root = typer.main.get_command(app)
    missing_groups = []
    for key in sorted(ALL_COMMANDS):
        cmd = root
        for word in key:
            sub = getattr(cmd, "commands", {}).get(word)
            if sub is None:
                if cmd is root:
                    missing_groups.append(word)
                    break
                pytest.fail(f"`streamsense {' '.join(key)}`: no command {word!r}")
            cmd = sub
    if missing_groups:
        pytest.skip(f"CLI groups not written yet: {sorted(set(missing_groups))}")
