"""Every command the docs name exists: each ``streamsense ...`` command in README.md, docs/,
examples/ and deploy/ (code spans and code blocks) answers ``--help``, and each ``make X``
is a Makefile target. A renamed or removed command fails here, not in a user's terminal."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from streamsense.services.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("examples/*.md"),
     *ROOT.glob("deploy/**/*.md")]
)  # fmt: skip
_CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`]+)`", re.S)
#: ``streamsense`` as a command, not a Kubernetes namespace (``-n streamsense``) or prose
_COMMAND = re.compile(
    r"(?:(?<=bin/)|(?<![\w./-]))(?<!-n )(?<!namespace )streamsense((?: +[a-z|][a-z0-9|-]*)+)"
)
_WORD = re.compile(r"^[a-z][a-z0-9-]*$")


def code_spans(text: str) -> list[str]:
    """Code blocks as they are; inline code on one line (it may wrap in the Markdown)."""
    return [m.group(1) or " ".join(m.group(2).split()) for m in _CODE.finditer(text)]


def named_commands() -> dict[tuple[str, ...], str]:
    """Command paths (possibly with ``a | b`` alternatives expanded) -> where first seen."""
    out: dict[tuple[str, ...], str] = {}
    for doc in DOCS:
        for span in code_spans(doc.read_text(encoding="utf-8")):
            for line in span.splitlines():
                for m in _COMMAND.finditer(line):
                    for path in _paths(m.group(1).split()):
                        out.setdefault(path, doc.relative_to(ROOT).as_posix())
    return out


@cache
def _root() -> Any:
    return typer.main.get_command(app)


def _paths(tokens: list[str]) -> list[tuple[str, ...]]:
    """Walk the command tree along ``tokens``: each word that must be a sub-command is one
    (``bench transport | fanout`` gives two paths). Unknown sub-commands are kept, so the
    test reports them."""
    node, path = _root(), ()
    i = 0
    while getattr(node, "commands", None) and i < len(tokens):
        words = [tokens[i]]
        while i + 2 < len(tokens) and tokens[i + 1] == "|" and _WORD.match(tokens[i + 2]):
            words.append(tokens[i + 2])
            i += 2
        if not _WORD.match(words[0]):
            break
        if len(words) > 1 or words[0] not in node.commands:
            return [(*path, w) for w in words]
        path = (*path, words[0])
        node = node.commands[words[0]]
        i += 1
    return [path] if path else []


def _resolve(path: tuple[str, ...]) -> Any:
    node = _root()
    for word in path:
        node = getattr(node, "commands", {}).get(word)
    return node


COMMANDS = named_commands()


def test_the_docs_name_the_commands_users_start_with() -> None:
    first = ["local up", "topics create", "models fetch", "bench models", "worker detect",
             "produce text", "sink redis", "gateway"]  # fmt: skip
    for path in first:
        assert tuple(path.split()) in COMMANDS, path


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: " ".join(p))
def test_every_command_the_docs_name_exists_and_answers_help(path: tuple[str, ...]) -> None:
    assert _resolve(path) is not None, f"`streamsense {' '.join(path)}` ({COMMANDS[path]})"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: streamsense " + " ".join(path) in " ".join(result.output.split())


def test_every_make_target_the_docs_name_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = {
        m.group(1)
        for doc in DOCS
        for span in code_spans(doc.read_text(encoding="utf-8"))
        for m in re.finditer(r"(?:^|[;&|(]\s*)make ([a-z][a-z-]*)", span, re.M)
    }
    assert {"demo", "test"} <= named
    assert sorted(named - targets) == []


def test_a_command_that_does_not_exist_is_caught() -> None:
    assert _paths("bench nonsense --json x".split()) == [("bench", "nonsense")]
    assert _resolve(("bench", "nonsense")) is None
    assert _paths("bench transport | models | fanout".split()) == [
        ("bench", "transport"),
        ("bench", "models"),
        ("bench", "fanout"),
    ]
    assert _paths("worker detect --model x &".split()) == [("worker", "detect")]
