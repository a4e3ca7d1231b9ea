"""``produce cameras`` at fleet scale: N cameras at F fps each from one process, for S seconds.

Every camera reads the sample video (1280x720 mp4v, composed from scikit-image photos, looped;
paced to F fps) or a given stream URL, resizes to the width and JPEG-encodes at quality 80;
the fleet produces into a fresh topic and publishes statuses to a fresh compacted topic on the
configured broker. Once every camera is online (and 3 s more), a window of S seconds is
measured:

- delivered: records read back from the topic whose ``capture_ns`` falls in the window, per
  camera, against the expected F x S (the figure the issue asks for is their ratio);
- CPU: the process' user+system CPU time over the window (``psutil``), in cores and per
  delivered frame; its threads and RSS; the load average around the run.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streamsense.schemas.frames import FrameHeaders
from streamsense.services.exceptions import ServiceError
from streamsense.services.producers.fleet import CameraFleet
from streamsense.services.producers.settings import CameraProducerSettings
from streamsense.services.producers.spec import CameraSpec, ReconnectPolicy
from streamsense.services.samples.video import make_video

Progress = Callable[[str], None]


def _topics(settings: CameraProducerSettings, partitions: int) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    frames = f"{settings.topic_prefix}bench.cameras.{tag}"
    states = f"{settings.topic_prefix}bench.cameras.status.{tag}"
    admin = AdminClient(settings.librdkafka_config())
    new = [
        NewTopic(frames, partitions, replication_factor=-1,
                 config={"max.message.bytes": str(16 * 1024 * 1024)}),
        NewTopic(states, 1, replication_factor=-1, config={"cleanup.policy": "compact"}),
    ]  # fmt: skip
    for fut in admin.create_topics(new).values():
        fut.result()
    return frames, states


def _delete(settings: CameraProducerSettings, topics: list[str]) -> None:
    admin = AdminClient(settings.librdkafka_config())
    for fut in admin.delete_topics(topics).values():
        fut.result()


def _read_back(bootstrap: str, topic: str, partitions: int) -> dict[str, list[int]]:
    """capture_ns of every record, per camera, reading each partition to its end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False})  # fmt: skip
    out: dict[str, list[int]] = {}
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}  # fmt: skip
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        got = dict.fromkeys(ends, 0)
        deadline = time.monotonic() + 60
        while any(got[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error() is not None:
                    continue
                got[int(m.partition() or 0)] = int(m.offset() or 0) + 1
                h = FrameHeaders.from_kafka_headers(m.headers())
                out.setdefault(h.camera_id, []).append(h.capture_ns)
    finally:
        c.close()
    return out


def _until_online(fleet: CameraFleet, started: float, timeout: float = 120.0) -> float:
    """Seconds until every camera is online. OpenCV opens FFmpeg streams one at a time (a
    process-wide lock around probing), so 16 RTSP cameras take ~10 s to come up."""
    while not all(c.state == "online" for c in fleet.cameras):
        if time.monotonic() - started > timeout or not any(not c.finished for c in fleet.cameras):
            states = {c.camera_id: c.state for c in fleet.cameras if c.state != "online"}
            msg = f"cameras not online after {timeout:g} s: {states}"
            raise ServiceError(msg)
        time.sleep(0.05)
    return time.monotonic() - started


def run(
    settings: CameraProducerSettings,
    cameras: int = 16,
    fps: float = 5.0,
    seconds: float = 60.0,
    width: int = 640,
    source: str | None = None,
    warmup: float = 3.0,
    progress: Progress = lambda _m: None,
) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ss-bench-cameras-") as tmp:
        if source is None:
            progress("composing the 1280x720 sample video (30 s at 10 fps)")
            video = Path(tmp) / "sample.mp4"
            make_video(video, fps=10, seconds=30.0)
            source = str(video)
        partitions = 6
        frames, states = _topics(settings, partitions)
        s = settings.model_copy(update={"camera_topic": frames, "camera_status_topic": states})
        s.apply_ffmpeg_options()
        specs = [
            CameraSpec(camera_id=f"bench-cam-{i:02d}", source=source, fps=fps, width=width,
                       loop=True, reconnect=ReconnectPolicy())
            for i in range(cameras)
        ]  # fmt: skip
        fleet = CameraFleet(s, specs)
        proc = psutil.Process()
        thread = threading.Thread(target=fleet.run, name="bench-fleet", daemon=True)
        try:
            progress(f"{cameras} cameras at {fps:g} fps: online, {warmup:g} s, {seconds:g} s run")
            started = time.monotonic()
            thread.start()
            online_s = _until_online(fleet, started)
            time.sleep(warmup)  # the fleet's pace is the load; the bench only watches
            cpu0, t0 = proc.cpu_times(), time.time_ns()
            stats0 = {c.camera_id: replace(c.stats) for c in fleet.cameras}
            threads = proc.num_threads()
            time.sleep(seconds)
            cpu1, t1 = proc.cpu_times(), time.time_ns()
            stats1 = {c.camera_id: replace(c.stats) for c in fleet.cameras}
            rss = proc.memory_info().rss
            load_during = os.getloadavg()
        finally:
            fleet.stop_event.set()
            thread.join(60)
        if fleet.kafka_error is not None:
            msg = f"the fleet stopped: {fleet.kafka_error}"
            raise ServiceError(msg)
        progress("reading the frames back")
        captured = _read_back(settings.kafka_bootstrap, frames, partitions)
        _delete(settings, [frames, states])
    window = (t1 - t0) / 1e9
    expected = fps * window
    per_camera = {}
    for spec in specs:
        cid = spec.camera_id
        n = sum(t0 <= ns < t1 for ns in captured.get(cid, []))
        # the window's counts: what the source gave (read), what thinning left out (skipped),
        # what was replaced before an encoder took it (behind) or dropped for Kafka (dropped)
        window_counts = {
            k: getattr(stats1[cid], k) - getattr(stats0[cid], k)
            for k in ("read", "skipped", "behind", "dropped", "failed", "reconnects")
        }
        per_camera[cid] = {"delivered": n, "ratio": round(n / expected, 4), **window_counts}
    ratios = [c["ratio"] for c in per_camera.values()]
    busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    delivered = sum(int(c["delivered"]) for c in per_camera.values())
    return {
        "benchmark": "cameras",
        "cameras": cameras,
        "fps_per_camera": fps,
        "width": width,
        "jpeg_quality": settings.camera_jpeg_quality,
        "encoders": settings.camera_encoders,
        "all_online_after_s": round(online_s, 2),
        "window_s": round(window, 2),
        "expected_per_camera": round(expected, 1),
        "delivered_ratio_min": min(ratios),
        "delivered_ratio_median": statistics.median(ratios),
        "delivered_ratio_max": max(ratios),
        "delivered_total": delivered,
        "cpu_cores": round(busy / window, 3),
        "cpu_ms_per_frame": round(1000 * busy / max(delivered, 1), 2),
        "threads": threads,
        "rss_mb": round(rss / 2**20, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_during": [round(x, 2) for x in load_during],
        "cpu_count": os.cpu_count(),
        "per_camera": per_camera,
        "source": "sample video (1280x720 mp4v, looped)" if source.endswith(".mp4") else source,
        "kafka_bootstrap": settings.kafka_bootstrap,
        "load": (
            f"{cameras} cameras in one process, each reading the source and paced to {fps:g} "
            f"fps, resized to {width} px and JPEG-encoded by the shared encoder pool, produced "
            "with statuses every camera_status_interval_s; delivered = records read back whose "
            "capture_ns is within the measured window, against fps x window"
        ),
    }
