"""One home per fact: every topic name and the task literal live in ``schemas/catalog.py``.

The checks read the product's source with ``ast``, so a topic string or a second task literal
added anywhere else fails here, with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from streamsense.schemas.catalog import (
    TASK_NAMES,
    TASKS,
    ImageTask,
    Task,
    Topic,
    dlq_topic,
    task_spec,
)
from streamsense.schemas.results import DetectionResult
from streamsense.services.kafka.topics import TOPICS, expand

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "schemas" / "catalog.py"
#: Topic names that are also ordinary words ("text", "frames", "alerts") are checked where a
#: topic is named: as the argument of ``settings.topic(...)``; dotted ones everywhere.
DOTTED = {t.value for t in Topic if "." in t.value}


def product_modules() -> list[Path]:
    return sorted(p for d in ("schemas", "models", "services") for p in (ROOT / d).rglob("*.py"))


def _findings(check: type[ast.NodeVisitor]) -> list[str]:
    out: list[str] = []
    for path in product_modules():
        if path == CATALOG:
            continue
        visitor = check()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        out += [f"{path.relative_to(ROOT)}:{line}: {what}" for line, what in visitor.found]  # type: ignore[attr-defined]
    return out


class _TopicNames(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def visit_Constant(self, node: ast.Constant) -> None:  # noqa: N802 - ast's naming
        if isinstance(node.value, str) and node.value in DOTTED:
            self.found.append((node.lineno, f"topic name {node.value!r}"))

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "topic" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self.found.append((node.lineno, f"topic({arg.value!r})"))
        self.generic_visit(node)


class _TaskLiterals(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def visit_Subscript(self, node: ast.Subscript) -> None:  # noqa: N802
        if isinstance(node.value, ast.Name) and node.value.id == "Literal":
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            values = {e.value for e in elts if isinstance(e, ast.Constant)}
            if values and values <= set(TASK_NAMES) and len(values) > 1:
                self.found.append((node.lineno, f"task literal {sorted(values)}"))
        self.generic_visit(node)


def test_topic_names_are_written_only_in_the_catalogue() -> None:
    assert _findings(_TopicNames) == []


def test_the_task_literal_is_defined_only_in_the_catalogue() -> None:
    assert _findings(_TaskLiterals) == []


def test_the_checks_do_catch_what_they_look_for(tmp_path: Path) -> None:
    code = 'x = settings.topic("frames")\ny = "results.sentiment"\nT = Literal["detect", "segment"]'
    tree = ast.parse(code)
    names, literals = _TopicNames(), _TaskLiterals()
    names.visit(tree)
    literals.visit(tree)
    assert [w for _, w in names.found] == ["topic('frames')", "topic name 'results.sentiment'"]
    assert [w for _, w in literals.found] == ["task literal ['detect', 'segment']"]


def test_every_catalogue_topic_has_its_settings_and_nothing_else_does() -> None:
    assert {s.name for s in TOPICS} == set(Topic)
    named = {s.name for s in expand(TOPICS, "p.")}
    assert "p.frames.dlq" in named and dlq_topic("p.frames") == "p.frames.dlq"


def test_every_task_has_one_entry_naming_its_topics_schema_and_model() -> None:
    assert tuple(TASKS) == TASK_NAMES == get_args(Task)
    for task, spec in TASKS.items():
        assert spec.task == task
        assert spec.input_topic in (Topic.FRAMES, Topic.TEXT)
        assert spec.results_topic.value.startswith("results.")
    assert set(get_args(ImageTask)) == {t for t, s in TASKS.items() if s.input == "image"}
    assert task_spec("detect").result_schema is DetectionResult
    with pytest.raises(ValueError, match="unknown task 'classify'"):
        task_spec("classify")


def test_our_packages_are_imported_only_as_streamsense() -> None:
    """A downstream app may have its own ``schemas`` package: ours never claims that name."""
    offenders = []
    for path in [*product_modules(), *sorted((ROOT / "tests").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {n}"
                for n in names
                if n.split(".")[0] in ("schemas", "models", "services")
            ]
    assert offenders == []
