"""The CLI prints ids, paths and messages exactly as they are: a camera id ``a:b:`` or a
path holding ``[red]`` is data, never rich markup or an emoji code."""

from __future__ import annotations

import io

from rich.console import Console

from streamsense.services.cli.entry import console
from streamsense.services.producers.live import LiveProgress


def _printed(c: Console, text: str) -> str:
    c.file = io.StringIO()
    c.print(text)
    assert isinstance(c.file, io.StringIO)
    return c.file.getvalue()


def test_console_prints_emoji_codes_and_markup_as_written() -> None:
    text = "camera a:b: at :smile: in [red]/logs[/red]"
    assert _printed(console(), text) == text + "\n"
    assert _printed(console(stderr=True), text) == text + "\n"


def test_live_progress_console_prints_emoji_codes_as_written() -> None:
    view = LiveProgress("produce cameras", dict, {})
    assert _printed(view.console, "cam :b: up") == "cam :b: up\n"
