"""The one catalogue: every task and every topic of the platform, named once.

A task is what a worker does to an input (``detect``, ``segment``, ``sentiment``); its entry in
:data:`TASKS` says which topic it reads, which results topic it writes, which result contract
those results follow and which zoo model serves it by default. :class:`Topic` names every other
topic. Services, the demo, analytics, the learner and the benchmarks take names from here;
``services.kafka.topics`` builds the topic spec (partitions, retention, size limits) from it.

Adding a task is one :class:`Task` value plus one :data:`TASKS` entry here, and its model
adapter (``models/``) and result codec (``services/workers/codecs.py``).

Names here are logical: a deployment's ``STREAMSENSE_TOPIC_PREFIX`` is added by
``StreamsenseSettings.topic``. ``tests/unit/test_catalog.py`` keeps every name in this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

from streamsense.schemas.base import Message
from streamsense.schemas.results import DetectionResult, SegmentResult, SentimentResult

#: The tasks a worker can serve (a Literal, so pydantic fields and FastAPI paths validate it).
Task = Literal["detect", "segment", "sentiment"]
TASK_NAMES: tuple[Task, ...] = get_args(Task)
#: The tasks whose input is an image (a user can register their own models for these).
ImageTask = Literal["detect", "segment"]


class Topic(StrEnum):
    """Every topic of the platform, by its logical name."""

    FRAMES = "frames"
    TEXT = "text"
    LABELS_TEXT = "labels.text"
    DETECTIONS = "results.detections"
    SEGMENTS = "results.segments"
    SENTIMENT = "results.sentiment"
    MODEL_UPDATES = "models.updates"
    CAMERAS_STATUS = "cameras.status"
    ANALYTICS_CAMERA = "analytics.camera"
    ANALYTICS_TEXT = "analytics.text"
    ALERTS = "alerts"


#: Dead letters of ``<topic>`` go to ``<topic>.dlq``.
DLQ_SUFFIX = ".dlq"

#: Largest frame record: a 4K (3840x2160) JPEG at quality 95 of a detailed scene is ~3-6 MB;
#: this leaves room for headers. The frames topic, the producers and the workers all use it.
FRAME_MAX_BYTES = 16 * 1024 * 1024
#: Largest frame a decoder accepts, in pixels (8192x8192): the decompression guard's budget.
FRAME_MAX_PIXELS = 8192 * 8192


@dataclass(frozen=True)
class TaskSpec:
    """What one task reads and writes."""

    task: Task
    input: Literal["image", "text"]
    input_topic: Topic
    results_topic: Topic
    result_schema: type[Message]
    default_model: str


TASKS: dict[Task, TaskSpec] = {
    "detect": TaskSpec(
        "detect", "image", Topic.FRAMES, Topic.DETECTIONS, DetectionResult, "coco-centernet"
    ),
    "segment": TaskSpec(
        "segment", "image", Topic.FRAMES, Topic.SEGMENTS, SegmentResult, "person-selfie"
    ),
    "sentiment": TaskSpec(
        "sentiment", "text", Topic.TEXT, Topic.SENTIMENT, SentimentResult, "sentiment-tweets"
    ),
}

#: The topics the analytics app writes (its inputs are the results topics of every task).
ANALYTICS_OUTPUTS: tuple[Topic, ...] = (
    Topic.ANALYTICS_CAMERA,
    Topic.ANALYTICS_TEXT,
    Topic.ALERTS,
)


def task_spec(task: str) -> TaskSpec:
    """The entry of ``task``; ValueError names the known tasks."""
    if task not in TASK_NAMES:
        msg = f"unknown task {task!r}: expected one of {', '.join(TASK_NAMES)}"
        raise ValueError(msg)
    return TASKS[task]


def results_topics() -> dict[Topic, Task]:
    """Each task's results topic (logical name) with its task."""
    return {spec.results_topic: task for task, spec in TASKS.items()}


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic`` (a full name, prefix included)."""
    return topic + DLQ_SUFFIX
