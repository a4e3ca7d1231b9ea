"""``streamsense settings``: every ``STREAMSENSE_*`` variable, from the settings classes.

docs/configuration.md is this command's output (a test keeps it so): a variable added to a
settings class appears in the docs with its default and meaning, or the test fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from streamsense.services.cli.entry import console

app = typer.Typer(help="Configuration: every STREAMSENSE_* variable with its default.")


def settings_classes() -> list[tuple[str, type[Any]]]:
    """(title, class) for the shared settings and each service's, in reading order."""
    from streamsense.services.analytics.settings import AnalyticsSettings
    from streamsense.services.gateway.settings import GatewaySettings
    from streamsense.services.learner.settings import LearnerSettings
    from streamsense.services.producers.settings import (
        CameraProducerSettings,
        TextProducerSettings,
    )
    from streamsense.services.settings import StreamsenseSettings
    from streamsense.services.sink.settings import SinkSettings
    from streamsense.services.workers.settings import WorkerSettings

    return [
        ("Every service", StreamsenseSettings),
        ("`produce camera`", CameraProducerSettings),
        ("`produce text`", TextProducerSettings),
        ("`worker detect|segment|sentiment`", WorkerSettings),
        ("`sink redis`", SinkSettings),
        ("`gateway`", GatewaySettings),
        ("`learner sentiment`", LearnerSettings),
        ("`analytics`", AnalyticsSettings),
    ]


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined or info.default is None:
        return ""
    else:
        value = info.default
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Path) or (isinstance(value, str) and str(Path.home()) in value):
        value = str(value).replace(str(Path.home()), "~")
    if isinstance(value, dict | list):
        return f"`{json.dumps(value)}`" if value else ""
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def rows(cls: type[Any], skip: set[str]) -> list[tuple[str, str, str]]:
    out = []
    for name, info in cls.model_fields.items():
        if name in skip:
            continue
        meaning = (info.description or "").replace("|", "\\|").replace("\n", " ")
        out.append((f"`STREAMSENSE_{name.upper()}`", _default(info), meaning))
    return out


def reference() -> str:
    """docs/configuration.md."""
    lines = [
        "# Configuration",
        "",
        "Every service reads `STREAMSENSE_*` environment variables once, at start-up; command-line",
        "options override them. This page is generated from the settings classes by",
        "`streamsense settings` (a test checks it is current). A service also reads every",
        "variable of the first table.",
        "",
    ]
    classes = settings_classes()
    base = set(classes[0][1].model_fields)
    for title, cls in classes:
        skip = set() if cls is classes[0][1] else base
        table = rows(cls, skip)
        if not table:
            continue
        lines += [f"## {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        lines += [f"| {v} | {d} | {m} |" for v, d, m in table]
        lines.append("")
    return "\n".join(lines)


@app.callback(invoke_without_command=True)
def settings() -> None:
    """Print docs/configuration.md: every variable, its default and meaning."""
    console().print(reference(), end="", soft_wrap=True)
