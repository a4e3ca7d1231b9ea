"""The Redis layout of the serving layer: the one place that names a Redis key or channel.

With the default prefix ``ss`` (``STREAMSENSE_REDIS_PREFIX``)::

    ss:{task}:{source}:stream         Stream, recent results (XADD MAXLEN ~ N), field ``json``
    ss:{task}:{source}:latest         Hash, the newest result: ``json``, ``written_ms``
    ss:{task}:sources                 Set, every source with results for the task (ids as given)
    ss:{task}:sources:seen            Sorted set, the same ids scored by their last write (ms):
                                      ids idle longer than the sink's source TTL leave both
    ss:live:{task}:{source}           pub/sub channel, the result JSON as published (one per
                                      source; the gateway subscribes to ``ss:live:*``)
    ss:thumb:{camera}                 String, the latest downscaled JPEG of a camera (TTL)
    ss:thumb:{camera}:meta            Hash, its width/height/seq/capture_ns/written_ms (same TTL)
    ss:cameras                        Set, every camera a thumbnail was stored for
    ss:cameras:seen                   Sorted set, the same ids by their last thumbnail (ms)
    ss:cameras:status                 Hash, camera id (as given) -> its newest CameraStatus JSON
                                      (``cameras.status``; a status older than three of its
                                      ``interval_s`` means its producer is gone)
    ss:cameras:status:seen            Sorted set, the same ids by their last status (ms): ids
                                      silent longer than the sink's source TTL leave both
    ss:cameras:status:live            pub/sub channel, each CameraStatus JSON as it is written
    ss:sink:lag                       Hash, Kafka consumer lag per ``topic[partition]`` (TTL)
    ss:analytics:{kind}:{source}      Hash, analytics windows and totals of a camera/text source
    ss:alerts                         Stream, every alert (field ``json``)
    ss:alerts:live                    pub/sub channel, the same alerts as they fire

``task`` is a catalogue task (``detect``, ``segment``, ``sentiment``). ``{source}`` and
``{camera}`` are source ids encoded by :func:`encode_id`: letters, digits, ``.``, ``_`` and
``-`` stand for themselves and every other byte of the UTF-8 form is ``%XX``, so no id can
reach another id's keys (``cam1:meta`` is ``cam1%3Ameta``, never ``cam1``'s meta hash), and no
id holds a glob character that a pattern subscription would expand. Stream ids are Redis' own
``<ms>-<n>``, so a stream id doubles as the time the result reached Redis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from streamsense.schemas.fields import MAX_ID_CHARS
from streamsense.services.serving.exceptions import SourceIdError
from streamsense.services.settings import REDIS_PREFIX_PATTERN

#: The field that holds the result JSON in stream entries and in the latest hash.
JSON_FIELD = "json"
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def encode_id(source: str) -> str:
    """The key-safe form of a source id; :class:`SourceIdError` when there is none."""
    if not source:
        msg = "a source id must not be empty"
        raise SourceIdError(msg)
    if len(source) > MAX_ID_CHARS:
        msg = f"source id of {len(source)} characters is longer than {MAX_ID_CHARS}"
        raise SourceIdError(msg)
    if _SAFE.match(source):
        return source
    try:
        return quote(source, safe="", errors="strict")
    except UnicodeEncodeError as exc:
        msg = f"source id {source!r} is not valid Unicode text"
        raise SourceIdError(msg) from exc


def decode_id(encoded: str) -> str:
    """The source id behind :func:`encode_id`'s form."""
    return unquote(encoded, errors="strict")


@dataclass(frozen=True)
class RedisKeys:
    """Key and channel names under one prefix."""

    prefix: str = "ss"
    _head: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not re.match(REDIS_PREFIX_PATTERN, self.prefix):
            msg = f"Redis prefix {self.prefix!r} must match {REDIS_PREFIX_PATTERN}"
            raise SourceIdError(msg)
        object.__setattr__(self, "_head", f"{self.prefix}:live:")

    # -- results ------------------------------------------------------------------------------

    def stream(self, task: str, source: str) -> str:
        return f"{self.prefix}:{task}:{encode_id(source)}:stream"

    def latest(self, task: str, source: str) -> str:
        return f"{self.prefix}:{task}:{encode_id(source)}:latest"

    def sources(self, task: str) -> str:
        return f"{self.prefix}:{task}:sources"

    def sources_seen(self, task: str) -> str:
        return f"{self.prefix}:{task}:sources:seen"

    def channel(self, task: str, source: str) -> str:
        return f"{self._head}{task}:{encode_id(source)}"

    @property
    def channel_pattern(self) -> str:
        """The pattern matching every live result channel (one subscriber per gateway)."""
        return f"{self._head}*"

    def parse_channel(self, channel: str) -> tuple[str, str] | None:
        """``(task, source)`` of a live result channel, None for anything else."""
        if not channel.startswith(self._head):
            return None
        task, sep, source = channel[len(self._head) :].partition(":")
        if not sep or not source:
            return None
        try:
            return task, decode_id(source)
        except UnicodeDecodeError:
            return None

    # -- cameras ------------------------------------------------------------------------------

    def thumb(self, camera: str) -> str:
        return f"{self.prefix}:thumb:{encode_id(camera)}"

    def thumb_meta(self, camera: str) -> str:
        return f"{self.prefix}:thumb:{encode_id(camera)}:meta"

    @property
    def cameras(self) -> str:
        return f"{self.prefix}:cameras"

    @property
    def cameras_seen(self) -> str:
        return f"{self.prefix}:cameras:seen"

    @property
    def camera_status(self) -> str:
        """Hash: camera id -> its newest ``CameraStatus`` JSON (one HGETALL reads the fleet)."""
        return f"{self.prefix}:cameras:status"

    @property
    def camera_status_seen(self) -> str:
        return f"{self.prefix}:cameras:status:seen"

    @property
    def camera_status_channel(self) -> str:
        """Outside ``live:*``, so result subscribers never receive statuses."""
        return f"{self.prefix}:cameras:status:live"

    # -- the sink's own state -----------------------------------------------------------------

    @property
    def sink_lag(self) -> str:
        return f"{self.prefix}:sink:lag"

    @property
    def sink_positions(self) -> str:
        """Hash ``topic[partition]`` -> next offset the sink applies (written with the results,
        in one transaction)."""
        return f"{self.prefix}:sink:positions"

    def sink_dead(self, field: str) -> str:
        """Sorted set of the offsets the sink dead-lettered in results partition ``field``
        (``topic[partition]``), written with the positions that pass them: until the group's
        offsets are committed past them they are dead-lettered again when read again, and no
        other offset below the position is."""
        return f"{self.prefix}:sink:dead:{field}"

    # -- analytics ----------------------------------------------------------------------------

    def analytics(self, kind: str, source: str) -> str:
        return f"{self.prefix}:analytics:{kind}:{encode_id(source)}"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}:alerts"

    @property
    def alerts_channel(self) -> str:
        return f"{self.prefix}:alerts:live"
