"""A quiet log's line is sent as soon as nothing more is there to read: it does not wait out the
producer's linger (``text_send_when_idle``). Each test gives the producer a 60 s linger, so a
line acknowledged within the test's waits was sent without lingering."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamsense.services.kafka.producer import Producer
from streamsense.services.producers.text import TextProducer
from tests.conftest import wait_for
from tests.producers.test_text import Following, append, events, text_settings

pytestmark = pytest.mark.integration

LINGER_MS = 60_000


def lingering(stack: dict[str, str], topic: str, tmp_path: Path, **kw: object) -> TextProducer:
    s = text_settings(stack, topic, tmp_path / "ckpt.json", **kw)
    producer = Producer(s, max_in_flight=s.text_max_in_flight, linger_ms=LINGER_MS)
    return TextProducer(s, pattern=str(tmp_path / "*.log"), follow=True, producer=producer)


def test_a_followed_file_s_quiet_lines_do_not_wait_out_the_linger(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    append(tmp_path / "app.log", "first")
    run = Following(lingering(stack, topic, tmp_path))
    run.acked(1)
    append(tmp_path / "app.log", "second", "third")
    run.acked(3)
    run.stop()
    assert [e.text for e in events(stack["bootstrap"], topic, 3)] == ["first", "second", "third"]


def test_stdin_s_quiet_lines_do_not_wait_out_the_linger(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    s = text_settings(stack, topic, tmp_path / "ckpt.json")
    producer = Producer(s, max_in_flight=s.text_max_in_flight, linger_ms=LINGER_MS)
    r, w = os.pipe()
    with open(r, "rb", buffering=0) as stdin:
        tp = TextProducer(s, stdin=stdin, source_id="chat", producer=producer)
        thread = threading.Thread(target=tp.run, daemon=True)
        thread.start()
        try:
            os.write(w, b"hello\n")
            wait_for(lambda: producer.acked >= 1, 20, "the first line acknowledged")
            os.write(w, b"again\n")
            wait_for(lambda: producer.acked >= 2, 20, "the second line acknowledged")
        finally:
            os.close(w)  # end of stdin: the run ends
            thread.join(20)
    assert not thread.is_alive()
    assert [e.text for e in events(stack["bootstrap"], topic, 2)] == ["hello", "again"]


def test_with_send_when_idle_off_lines_linger_and_the_exit_still_delivers_them(
    stack: dict[str, str], make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic("text")
    append(tmp_path / "app.log", "waits")
    tp = lingering(stack, topic, tmp_path, text_send_when_idle=False)
    run = Following(tp)
    wait_for(lambda: tp.stats.sent >= 1, 20, "the line read and handed to the producer")
    time.sleep(2)
    assert tp.producer.acked == 0, "a 60 s linger was not waited out: nothing may be sent yet"
    run.stop()  # the exit's flush sends it at once, linger or not
    assert tp.producer.acked == 1
    assert [e.text for e in events(stack["bootstrap"], topic, 1)] == ["waits"]
