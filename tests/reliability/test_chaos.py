"""Exactly once from log line to Redis, on a three-broker cluster, through kill -9s.

A growing log file (6,000 lines at 300 lines/s) is followed by the text producer; two sentiment
workers (exactly-once) share the text topic; the sink writes Redis; a camera at 5 fps feeds a
detect worker. During the run: kill -9 one sentiment worker; kill -9 the broker leading text
partition 0 and start it again; kill -9 the sink and start it again; kill -9 Redis (append-only
file on) and start it again. At the end every line has exactly one committed result and exactly
one Redis entry, and no frame has two results.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
import redis
from pydantic import SecretStr

from streamsense.schemas.catalog import Topic
from streamsense.services.kafka.topics import TOPICS, ensure_topics
from streamsense.services.local import procs
from streamsense.services.local.cluster import KafkaCluster
from streamsense.services.local.kafka import ensure_jars
from streamsense.services.local.redis import RedisNode
from streamsense.services.serving.keys import RedisKeys
from streamsense.services.settings import StreamsenseSettings, default_home
from tests.conftest import wait_for
from tests.reliability.conftest import TopicReader, service_env, start_cli, stop_child

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.slow]

LINES, RATE = 6000, 300
SOURCE = "chaos.log"


class Service:
    """A child service with a health port, started again on demand."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.args, self.logs = name, args, logs
        self.port = procs.free_port()
        self.env = {**env, "STREAMSENSE_METRICS_PORT": str(self.port)}
        self.proc = start_cli(args, self.env, logs / f"{name}.log")
        self.starts = 1

    def health(self) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())
        except OSError:
            return None

    def kill9(self) -> float:
        self.proc.kill()
        self.proc.wait(10)
        return time.time()

    def restart(self) -> None:
        self.starts += 1
        self.proc = start_cli(self.args, self.env, self.logs / f"{self.name}-{self.starts}.log")

    def stop(self) -> None:
        stop_child(self.proc)


def _feed(path: Path, stop: threading.Event, lines: int = LINES) -> None:
    start = time.monotonic()
    with path.open("a") as out:
        sent = 0
        while sent < lines and not stop.wait(0.05):
            due = min(lines, int((time.monotonic() - start) * RATE))
            out.writelines(f"line {i}: {'great' if i % 3 else 'awful'} day\n"
                           for i in range(sent, due))  # fmt: skip
            out.flush()
            sent = due


def _camera_images(folder: Path) -> Path:
    import cv2
    from skimage import data

    folder.mkdir()
    for i, img in enumerate((data.astronaut(), data.coffee(), data.chelsea())):
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return folder


def _redis_seqs(r: redis.Redis, keys: RedisKeys) -> Counter[int]:
    seen: Counter[int] = Counter()
    try:
        for _id, fields in r.xrange(keys.stream("sentiment", SOURCE)):
            seen[orjson.loads(fields[b"json"])["source"]["seq"]] += 1
    except redis.ConnectionError:
        return Counter()
    return seen


def _first_entry_after(r: redis.Redis, keys: RedisKeys, t: float) -> float:
    """Seconds from ``t`` to the first stream entry Redis wrote after it (ids are ms)."""
    entries = r.xrange(keys.stream("sentiment", SOURCE), min=str(int(t * 1000) + 1), count=1)
    return int(entries[0][0].split(b"-")[0]) / 1000 - t if entries else float("nan")


def test_exactly_once_from_log_line_to_redis_through_kill_9s(
    cluster: KafkaCluster, zoo_store: Path, tmp_path: Path
) -> None:
    settings = StreamsenseSettings(
        kafka_bootstrap=cluster.bootstrap,
        topic_prefix=f"x{uuid.uuid4().hex[:6]}.",
        model_store=zoo_store,
        home=tmp_path,
    )
    wanted = {Topic.TEXT, Topic.SENTIMENT, Topic.FRAMES, Topic.DETECTIONS, Topic.SEGMENTS,
              Topic.CAMERAS_STATUS}  # fmt: skip
    ensure_topics(settings, [s for s in TOPICS if s.name in wanted])
    text_topic = settings.topic(Topic.TEXT)
    assert cluster.leader(text_topic, 0) in (1, 2, 3)
    rnode = RedisNode(tmp_path / "redis", procs.free_port())  # append-only file, everysec
    rpid = rnode.start()
    wait_for(lambda: procs.port_open(rnode.port), 20, "redis")
    keys = RedisKeys(f"x{uuid.uuid4().hex[:6]}")
    env = service_env(
        settings.model_copy(update={"redis_url": SecretStr(rnode.url)}),
        STREAMSENSE_DELIVERY="exactly-once",
        STREAMSENSE_REDIS_PREFIX=keys.prefix,
        STREAMSENSE_SINK_STREAM_MAXLEN="20000",
        STREAMSENSE_SINK_THUMBNAILS="false",
    )
    logs, log = tmp_path / "logs", tmp_path / SOURCE
    logs.mkdir()
    log.write_text("")
    images = _camera_images(tmp_path / "cam")
    services = [
        Service("worker-a", ["worker", "sentiment"], env, logs),
        Service("worker-b", ["worker", "sentiment"], env, logs),
        Service("worker-detect", ["worker", "detect", "--model", "face-blazeface"], env, logs),
        Service("sink", ["sink", "redis"], env, logs),
    ]
    worker_a, _, _, sink = services
    producers = [
        Service("text", ["produce", "text", "--path", str(log), "--follow",
                         "--checkpoint", str(tmp_path / "text.ckpt")], env, logs),
        Service("camera", ["produce", "camera", "--source", str(images), "--camera-id", "cam",
                           "--fps", "5", "--loop"], env, logs),
    ]  # fmt: skip
    r = redis.Redis.from_url(rnode.url, socket_timeout=2)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(log, stop), daemon=True)
    timeline: dict[str, float] = {}
    try:
        for s in services:
            wait_for(lambda s=s: (h := s.health()) is not None and h["ok"], 120, f"{s.name} up",
                     state=s.health)  # fmt: skip
        feeder.start()
        wait_for(lambda: len(_redis_seqs(r, keys)) >= 600, 60, "steady results")
        owned = worker_a.health() or {}
        timeline["worker_killed"] = worker_a.kill9()
        time.sleep(2)  # the chaos is spread over the run on purpose
        leader = cluster.leader(text_topic, 0)
        cluster.kill(leader)
        timeline["broker_killed"] = time.time()
        time.sleep(3)
        cluster.start_node(leader, ensure_jars(default_home()))
        timeline["broker_back"] = time.time()
        timeline["sink_killed"] = sink.kill9()
        sink.restart()
        wait_for(lambda: (h := sink.health()) is not None and h["ok"], 90, "the sink back")
        timeline["sink_back"] = time.time()
        procs.kill(rpid, f"{rnode.host}:{rnode.port}")
        timeline["redis_killed"] = time.time()
        rpid = rnode.start()
        wait_for(lambda: procs.port_open(rnode.port), 20, "redis back")
        feeder.join(60)
        wait_for(lambda: len(_redis_seqs(r, keys)) >= LINES, 180, "every line in Redis")
        for s in [*producers, *services[1:]]:
            s.stop()  # stopped cleanly: a last write of theirs would be counted below
        in_redis = _redis_seqs(r, keys)
        sink_first = _first_entry_after(r, keys, timeline["sink_killed"])
    finally:
        stop.set()
        for s in [*producers, *services[1:]]:
            s.stop()
        procs.stop(rpid, f"{rnode.host}:{rnode.port}")
    results = TopicReader(cluster.bootstrap, settings.topic(Topic.SENTIMENT), 3,
                          {"isolation.level": "read_committed"})  # fmt: skip
    try:
        committed = results.read(LINES + 1, timeout=30)
    finally:
        results.close()
    per_seq = Counter(orjson.loads(m.value())["source"]["seq"] for m in committed)
    frames = TopicReader(cluster.bootstrap, settings.topic(Topic.DETECTIONS), 6,
                         {"isolation.level": "read_committed"})  # fmt: skip
    try:
        detections = Counter(
            orjson.loads(m.value())["source"]["seq"] for m in frames.read(10**6, 5)
        )
    finally:
        frames.close()
    held = {int(a.rsplit("[", 1)[1].rstrip("]")) for a in owned.get("assigned", [])}  # type: ignore[union-attr]
    takeover = min(
        (t for m in committed
         if (b := orjson.loads(m.value()))["source"]["partition"] in held
         and (t := b["timings"]["produced_ns"] / 1e9) > timeline["worker_killed"]),
        default=float("nan"),
    ) - timeline["worker_killed"]  # fmt: skip
    print(f"\nchaos: {len(committed)} committed results for {LINES} lines, "
          f"{sum(in_redis.values())} Redis entries, {len(detections)} frames with results; "
          f"kill -9 to the first result of worker-a's partitions {sorted(held)} from the other "
          f"worker: {takeover:.1f} s; sink kill -9 to its first Redis write after the restart: "
          f"{sink_first:.1f} s; timeline {timeline}")  # fmt: skip
    assert set(per_seq) == set(range(LINES)), "every line has a committed result"
    assert max(per_seq.values()) == 1, [s for s, n in per_seq.items() if n > 1][:10]
    assert set(in_redis) == set(range(LINES)) and max(in_redis.values()) == 1
    assert detections and max(detections.values()) == 1, "no frame has two results"


def _takeover_s(held: set[int], killed_at: float, results: list[object]) -> float:
    """Seconds from ``killed_at`` to the first committed result of the killed member's
    partitions produced after it (by the member that took them over)."""
    times = [
        t
        for m in results
        if (b := orjson.loads(m.value()))["source"]["partition"] in held  # type: ignore[attr-defined]
        and (t := b["timings"]["produced_ns"] / 1e9) > killed_at
    ]
    return min(times, default=float("nan")) - killed_at


def test_a_killed_worker_or_sink_is_replaced_within_15_s(
    cluster: KafkaCluster, zoo_store: Path, tmp_path: Path
) -> None:
    """Two sentiment workers and two sinks in their groups (no static membership), text at
    200 lines/s: kill -9 the worker that holds partitions, then the sink that does; the other
    member serves their partitions again within 15 s (the 10 s session timeout, a rebalance)."""
    settings = StreamsenseSettings(
        kafka_bootstrap=cluster.bootstrap,
        topic_prefix=f"f{uuid.uuid4().hex[:6]}.",
        model_store=zoo_store,
        home=tmp_path,
    )
    ensure_topics(settings, [s for s in TOPICS if s.name in {Topic.TEXT, Topic.SENTIMENT}])
    rnode = RedisNode(tmp_path / "redis", procs.free_port())
    rpid = rnode.start()
    keys = RedisKeys(f"f{uuid.uuid4().hex[:6]}")
    env = service_env(
        settings.model_copy(update={"redis_url": SecretStr(rnode.url)}),
        STREAMSENSE_DELIVERY="exactly-once",
        STREAMSENSE_REDIS_PREFIX=keys.prefix,
        STREAMSENSE_SINK_STREAM_MAXLEN="20000",
        STREAMSENSE_SINK_THUMBNAILS="false",
    )
    logs, log = tmp_path / "logs", tmp_path / SOURCE
    logs.mkdir()
    log.write_text("")
    workers = [Service(f"worker-{i}", ["worker", "sentiment"], env, logs) for i in (1, 2)]
    sinks = [Service(f"sink-{i}", ["sink", "redis"], env, logs) for i in (1, 2)]
    text = Service("text", ["produce", "text", "--path", str(log), "--follow",
                            "--checkpoint", str(tmp_path / "text.ckpt")], env, logs)  # fmt: skip
    r = redis.Redis.from_url(rnode.url, socket_timeout=2)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(log, stop, 10**6), daemon=True)  # until stop
    figures: dict[str, float] = {}
    try:
        feeder.start()
        wait_for(lambda: len(_redis_seqs(r, keys)) >= 300, 120, "results flowing")

        # every line has one source id, so the lines are in one text partition: kill the
        # member that holds it (a member holding only empty partitions has nothing to take over)
        busy = {orjson.loads(m.value())["source"]["partition"] for m in _committed(settings)}  # type: ignore[attr-defined]

        def holder(group: list[Service]) -> tuple[Service, set[int]] | None:
            for s in group:
                held = {int(a.rsplit("[", 1)[1].rstrip("]")) for a in (s.health() or {})
                        .get("assigned", [])}  # type: ignore[union-attr]  # fmt: skip
                if held & busy:
                    return s, held
            return None

        wait_for(lambda: holder(workers), 30, f"a member holding the partitions with data {busy}",
                 state=lambda: [s.health() for s in workers])  # fmt: skip
        worker, held = holder(workers)  # type: ignore[misc]
        killed = worker.kill9()
        # every line has one source id, so one results partition: its sink is the one writing
        sink = next(s for s in sinks if (s.health() or {}).get("written"))
        wait_for(lambda: not math.isnan(_takeover_s(held, killed, _committed(settings))), 40,
                 "the other worker serving the killed one's partitions")  # fmt: skip
        figures["worker"] = _takeover_s(held, killed, _committed(settings))
        sink_killed = sink.kill9()
        wait_for(lambda: not math.isnan(_first_entry_after(r, keys, sink_killed + 0.5)), 40,
                 "the other sink writing")  # fmt: skip
        figures["sink"] = _first_entry_after(r, keys, sink_killed + 0.5) + 0.5
    finally:
        stop.set()
        for s in [text, *workers, *sinks]:
            s.stop()
        procs.stop(rpid, f"{rnode.host}:{rnode.port}")
    print(f"\nfailover: kill -9 to the first result from the new owner: worker "
          f"{figures['worker']:.1f} s, sink {figures['sink']:.1f} s")  # fmt: skip
    assert figures["worker"] <= 15 and figures["sink"] <= 15, figures


def _committed(settings: StreamsenseSettings) -> list[object]:
    reader = TopicReader(settings.kafka_bootstrap, settings.topic(Topic.SENTIMENT), 3,
                         {"isolation.level": "read_committed"})  # fmt: skip
    try:
        return list(reader.read(10**7, timeout=2))
    finally:
        reader.close()
