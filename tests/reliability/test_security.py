"""Security against real servers: Kafka over SASL_SSL (SCRAM-SHA-512, TLS with a CA made here),
Redis with an ACL user, and a static check that nothing deserializes with pickle."""

from __future__ import annotations

import ast
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer as RdConsumer
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.schemas.dlq import DeadLetterInfo
from streamsense.schemas.registry import decode
from streamsense.schemas.results import SentimentResult
from streamsense.services.kafka.consumer import BatchLoop
from streamsense.services.kafka.loopconfig import LoopConfig
from streamsense.services.kafka.producer import Producer
from streamsense.services.local import procs
from streamsense.services.local.kafka import KafkaNode, SecureListener
from streamsense.services.local.redis import RedisNode
from streamsense.services.local.stack import redis_answers
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.settings import StreamsenseSettings
from streamsense.services.sink.settings import SinkSettings
from tests.conftest import wait_for
from tests.kafka_helpers import EchoHandler
from tests.reliability.conftest import REPO, OwnKafka, TopicReader
from tests.reliability.tls import TlsFiles, make_ca_and_broker_cert
from tests.sink import factory
from tests.sink.test_sink import Running

pytestmark = pytest.mark.integration

USER = "streamsense"


class SecureBroker:
    def __init__(self, broker: OwnKafka, tls: TlsFiles, password: str) -> None:
        self.broker, self.tls, self.password = broker, tls, password

    def settings(self, password: str | None = None, ca: Path | None = None, **kw: object):
        return StreamsenseSettings(
            kafka_bootstrap=self.broker.node.secure_bootstrap,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=USER,
            kafka_sasl_password=self.password if password is None else password,
            kafka_ssl_ca_location=ca or self.tls.ca,
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A broker with a PLAINTEXT listener (inter-broker) and a SASL_SSL one for clients."""
    root = tmp_path_factory.mktemp("secure-kafka")
    tls = make_ca_and_broker_cert(root / "tls")
    password = secrets.token_urlsafe(16)
    listener = SecureListener(procs.free_port(), tls.ca, tls.cert, tls.key, ((USER, password),))
    node = KafkaNode(root / "kafka", procs.free_port(), procs.free_port(), secure=listener)
    broker = OwnKafka(node)
    broker.start()
    try:
        yield SecureBroker(broker, tls, password)
    finally:
        broker.stop()


def _create(settings: StreamsenseSettings, *names: str) -> None:
    admin = AdminClient(settings.librdkafka_config())
    new = [NewTopic(n, num_partitions=2, replication_factor=1) for n in names]
    for fut in admin.create_topics(new, request_timeout=20).values():
        fut.result()


def test_produce_and_consume_over_sasl_ssl_scram_sha_512(
    secure: SecureBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Settings from STREAMSENSE_ env, as a deployment sets them; our Producer and BatchLoop,
    DLQ included, through the TLS listener with hostname verification on."""
    for key, value in {
        "KAFKA_BOOTSTRAP": secure.broker.node.secure_bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": secure.password,
        "KAFKA_SSL_CA_LOCATION": str(secure.tls.ca),
        "SERVICE_NAME": "secure-echo",
    }.items():
        monkeypatch.setenv(f"STREAMSENSE_{key}", value)
    settings = StreamsenseSettings()
    assert secure.password not in repr(settings), "the password must never be printed"
    conf = settings.librdkafka_config()
    assert conf["ssl.endpoint.identification.algorithm"] == "https"
    src, out = f"in.{uuid.uuid4().hex[:6]}", f"out.{uuid.uuid4().hex[:6]}"
    _create(settings, src, out, src + ".dlq")

    n = 200
    p = Producer(settings)
    for i in range(n):
        p.produce(src, b"bad-%d" % i if i == 7 else b"msg-%d" % i, key=f"k{i % 4}")
    assert p.flush(30) == 0 and p.failed == 0 and p.acked == n

    group = f"g-{uuid.uuid4().hex[:8]}"
    loop = BatchLoop(
        settings,
        LoopConfig([src], group, delivery="at-least-once"),
        EchoHandler(out),
        Producer(settings),
    )
    loop.run(max_messages=n)
    assert loop.dead_lettered == 1

    reader = TopicReader(settings.kafka_bootstrap, out, 2, conf)
    try:
        got = reader.read(n - 1)
    finally:
        reader.close()
    assert sorted(m.value() for m in got) == sorted(b"MSG-%d" % i for i in range(n) if i != 7)
    dead = TopicReader(settings.kafka_bootstrap, src + ".dlq", 2, conf)
    try:
        (letter,) = dead.read(1)
    finally:
        dead.close()
    info = DeadLetterInfo.from_kafka_headers(letter.headers())
    assert letter.value() == b"bad-7" and info.error_class == "ValueError"
    assert info.service == "secure-echo"
    c = RdConsumer({**conf, "group.id": group})
    try:
        committed = c.committed([TopicPartition(src, 0), TopicPartition(src, 1)], timeout=10)
    finally:
        c.close()
    assert sum(max(tp.offset, 0) for tp in committed) == n


def _refused(
    settings: StreamsenseSettings, reason: str, timeout: float = 20.0
) -> tuple[list[KafkaError], Producer]:
    """Produce one record; collect the client errors until one says ``reason``."""
    errors: list[KafkaError] = []

    p = Producer(
        settings,
        config={"error_cb": errors.append, "message.timeout.ms": 4000, "log_level": 0},
    )
    p.produce("anything", b"secret payload")
    deadline = time.monotonic() + timeout
    while not any(reason in e.str() for e in errors) and time.monotonic() < deadline:
        p.poll(0.1)
    assert any(reason in e.str() for e in errors), [e.str() for e in errors]
    return errors, p


def test_a_wrong_password_is_refused_with_a_clear_error(secure: SecureBroker) -> None:
    errors, p = _refused(secure.settings(password="not-the-password"), "invalid credentials")
    err = next(e for e in errors if "invalid credentials" in e.str())
    assert err.code() == KafkaError._AUTHENTICATION, err
    assert "SASL authentication error" in err.str() and "SCRAM-SHA-512" in err.str()
    assert p.flush(10) == 0
    assert p.failed == 1 and p.acked == 0, "nothing may be written without authentication"


def test_a_broker_certificate_from_another_ca_is_refused(
    secure: SecureBroker, tmp_path: Path
) -> None:
    other = make_ca_and_broker_cert(tmp_path / "other")
    errors, p = _refused(secure.settings(ca=other.ca), "certificate verify failed")
    err = next(e for e in errors if "certificate verify failed" in e.str())
    assert err.code() in (KafkaError._SSL, KafkaError._TRANSPORT), err
    assert "SSL" in err.str() and "handshake" in err.str().lower(), err
    assert p.flush(10) == 0 and p.failed == 1


# -- Redis: an ACL user limited to the sink's keys -----------------------------------------------


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[tuple[RedisNode, int]]:
    node = RedisNode(tmp_path / "redis", procs.free_port(), password=secrets.token_urlsafe(12))
    pid = node.start()
    try:
        procs.wait_until(lambda: redis_answers(node.url), 20, "Redis", node.log_path)
        yield node, pid
    finally:
        procs.stop(pid, f"127.0.0.1:{node.port}")


def test_the_sink_writes_as_a_redis_acl_user_from_streamsense_redis_url(
    stack: dict[str, str], acl_redis: tuple[RedisNode, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    node, _ = acl_redis
    tag = uuid.uuid4().hex[:8]
    prefix, password = f"ss{tag}", secrets.token_urlsafe(12)
    admin = redis.Redis.from_url(node.url)
    # least privilege: only the sink's own keys and channels, no admin or dangerous commands
    admin.execute_command(
        "ACL", "SETUSER", "sink", "on", f">{password}", f"~{prefix}:*", "resetchannels",
        f"&{prefix}:*", "+@all", "-@dangerous", "+client|setname",
    )  # fmt: skip
    user_url = f"redis://sink:{password}@127.0.0.1:{node.port}/0"
    monkeypatch.setenv("STREAMSENSE_REDIS_URL", user_url)
    settings = factory.sink_settings(
        stack["bootstrap"], user_url, "acl", sink_thumbnails=False, sink_retry_cap_s=0.2
    )
    fields = settings.model_dump(exclude={"redis_url"})
    settings = SinkSettings(**{**fields, "redis_prefix": prefix})
    assert settings.redis_url.get_secret_value() == user_url, "read from STREAMSENSE_REDIS_URL"
    assert password not in repr(settings)
    factory.produce(
        settings, [factory.result_record(factory.sentiment("app.log", i)) for i in range(20)]
    )
    running = Running(settings)
    keys = RedisKeys(prefix)
    try:
        wait_for(lambda: admin.xlen(keys.stream("sentiment", "app.log")) == 20, 30, "20 results")
        assert running.sink.health()[0]
    finally:
        running.stop()
    assert not running.errors
    entries = admin.xrange(keys.stream("sentiment", "app.log"))
    seqs = [decode(f[b"json"], SentimentResult).source.seq for _, f in entries]
    assert seqs == list(range(20))
    # the ACL holds: the same user cannot touch other keys or run admin commands
    user = redis.Redis.from_url(user_url)
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.set("other:key", b"x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.execute_command("CONFIG", "GET", "requirepass")
    user.close()
    admin.close()


def test_a_wrong_redis_password_makes_the_sink_unhealthy_with_the_reason(
    stack: dict[str, str], acl_redis: tuple[RedisNode, int]
) -> None:
    node, _ = acl_redis
    bad_url = f"redis://default:wrong@127.0.0.1:{node.port}/0"
    settings = factory.sink_settings(
        stack["bootstrap"], bad_url, "badpw", sink_thumbnails=False, sink_retry_cap_s=0.2
    )
    factory.produce(settings, [factory.result_record(factory.sentiment("app.log", 0))])
    running = Running(settings)
    sink = running.sink
    try:
        wait_for(lambda: sink.handler.retries > 0, 30, "a refused write")
        ok, detail = sink.health()
    finally:
        running.stop()
    # stopping while Redis refuses us: the batch stays uncommitted, nothing is dead-lettered
    assert [type(e).__name__ for e in running.errors] == ["FatalHandlerError"]
    assert not ok and detail["redis_ok"] is False
    assert "AuthenticationError" in detail["redis_error"], detail["redis_error"]
    assert "wrong" not in detail["redis_error"], "the password must not leak into health output"
    assert sink.loop.dead_lettered == 0, "an auth failure must not dead-letter good results"


# -- no unsafe deserialization anywhere in the product -------------------------------------------

_UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "shelve", "marshal", "joblib"}


def _scan(path: Path) -> tuple[list[str], int]:
    """Unsafe deserialization in ``path``, and how many Keras model loads it checked."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []
    keras_loads = 0
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
            )
            if any(m.split(".")[0] in _UNSAFE_MODULES for m in mods):
                found.append(f"{where}: imports {mods}")
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        kw = {k.arg: k.value for k in node.keywords}
        if func.endswith("load_model") and "keras" in func:
            keras_loads += 1
            safe = kw.get("safe_mode")
            if not (isinstance(safe, ast.Constant) and safe.value is True):
                found.append(f"{where}: {func} without safe_mode=True")
        if func.split(".")[-1] == "load" and func.split(".")[0] in {"np", "numpy"}:
            flag = kw.get("allow_pickle")
            if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                found.append(f"{where}: {func}(allow_pickle=...)")
        if func in {"yaml.load", "yaml.unsafe_load", "yaml.full_load"}:
            found.append(f"{where}: {func} (use yaml.safe_load)")
        if func in {"torch.load", "pickle.load", "pickle.loads", "eval", "exec"}:
            found.append(f"{where}: {func}")
    return found, keras_loads


def test_no_module_deserializes_with_pickle_and_keras_loads_are_safe() -> None:
    files = [p for d in ("schemas", "models", "services") for p in (REPO / d).rglob("*.py")]
    assert len(files) > 100, "the scan must cover the whole product"
    scans = [_scan(f) for f in files]
    assert [msg for problems, _ in scans for msg in problems] == []
    # models.runtime.load_keras (serving and the learner load artifacts through it, after the
    # archive check) and the learner's clone of its own saved model
    assert sum(n for _, n in scans) >= 2, "the Keras loads of models/ and the learner were seen"
    learner = (REPO / "services/learner/keras_text.py").read_text()
    assert "load_keras(artifact)" in learner, "the learner loads artifacts unchecked"


def test_the_scan_catches_what_it_forbids(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import pickle\nimport numpy as np\nimport keras\nimport yaml\n"
        "np.load('a.npy', allow_pickle=True)\n"
        "np.load('a.npy')\n"
        "keras.saving.load_model('m.keras')\n"
        "keras.saving.load_model('m.keras', safe_mode=False)\n"
        "keras.saving.load_model('m.keras', safe_mode=True)\n"
        "yaml.load(open('x'))\n"
    )
    problems, loads = _scan(probe)
    assert loads == 3
    assert [p.split(": ", 1)[1] for p in problems] == [
        "imports ['pickle']",
        "np.load(allow_pickle=...)",
        "keras.saving.load_model without safe_mode=True",
        "keras.saving.load_model without safe_mode=True",
        "yaml.load (use yaml.safe_load)",
    ], problems


def test_a_card_cannot_point_outside_its_version_dir(tmp_path: Path) -> None:
    """A card whose ``artifact`` is an absolute or ``..`` path makes the store hash (and, with
    a matching sha256, load) a file outside the store; put() would write outside it."""
    from streamsense.models.card import InputSpec, ModelCard, Source

    with pytest.raises(ValueError, match="artifact"):
        ModelCard(
            name="m", version="1", task="sentiment", adapter="keras_text", format="keras",
            artifact="../../../etc/passwd", sha256="0" * 64, licence="x",
            source=Source(kind="user"), input=InputSpec(kind="text", shape=[None], dtype="str"),
            labels=["a"],
        )  # fmt: skip


def test_a_loop_that_cannot_authenticate_reports_unhealthy(secure: SecureBroker) -> None:
    """A worker with a wrong password polls fine and has nothing assigned, so only the client's
    own error tells: /healthz turns red with librdkafka's reason (and no password in it)."""
    s = secure.settings(password="not-the-password", service_name="bad-creds")
    loop = BatchLoop(
        s,
        LoopConfig(["anything"], "g-bad-creds", delivery="at-least-once"),
        EchoHandler("out"),
        Producer(s),
    )
    t = threading.Thread(target=loop.run, daemon=True)
    t.start()
    try:
        wait_for(lambda: loop.running and not loop.health()[0], 30, "unhealthy")
        detail = loop.health()[1]
    finally:
        loop.stop()
        t.join(30)
    assert "AUTHENTICATION" in detail["kafka_error"], detail
    assert "not-the-password" not in str(detail)
