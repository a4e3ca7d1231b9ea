"""Configuration docs follow the settings classes: docs/configuration.md is what
`streamsense settings` prints, and every STREAMSENSE_* variable the docs, the README and the
deployment files name exists in a settings class."""

from __future__ import annotations

import re
from pathlib import Path

from streamsense.services.cli.settings_cmd import reference, settings_classes

ROOT = Path(__file__).resolve().parents[2]
#: Variables that are not a service's settings: the test suite's, and the host-side ones of
#: docker compose and deploy/validate.sh (image, GPU count, published port, tool cache).
NOT_SETTINGS = {
    "STREAMSENSE_TEST_MODEL_STORE",
    "STREAMSENSE_IMAGE",
    "STREAMSENSE_GPU_IMAGE",
    "STREAMSENSE_GPU_COUNT",
    "STREAMSENSE_GATEWAY_PUBLISH",
    "STREAMSENSE_TOOLS_DIR",
    "STREAMSENSE_TOOLS_PYTHON",
    "STREAMSENSE_VALIDATE_APT",
}
#: A variable, not a family written as ``STREAMSENSE_CAMERA_*``.
_NAME = re.compile(r"STREAMSENSE_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*\*)")


def known_variables() -> set[str]:
    return {
        f"STREAMSENSE_{name.upper()}" for _, cls in settings_classes() for name in cls.model_fields
    }


def test_docs_configuration_is_the_generated_reference() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert doc.strip() == reference().strip(), "run: streamsense settings > docs/configuration.md"


def test_every_variable_the_docs_and_deploy_files_name_exists() -> None:
    files = [ROOT / "README.md", ROOT / "docker-compose.yml", *ROOT.glob("docs/*.md"),
             *(p for p in ROOT.glob("deploy/**/*") if p.is_file() and p.suffix in
               {".yaml", ".yml", ".md", ".py", ".env", ""})]  # fmt: skip
    known = known_variables() | NOT_SETTINGS
    unknown = {
        f"{f.relative_to(ROOT)}: {name}"
        for f in files
        for name in _NAME.findall(f.read_text(errors="replace"))
        if name not in known
    }
    assert sorted(unknown) == []


def test_the_readme_names_the_variables_a_deployment_sets() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("KAFKA_BOOTSTRAP", "REDIS_URL", "TOPIC_PREFIX", "REDIS_PREFIX", "DELIVERY",
                 "WORKER_GROUP", "SINK_GROUP", "METRICS_PORT"):  # fmt: skip
        assert f"STREAMSENSE_{name}" in readme, name
    assert "docs/configuration.md" in readme


def test_every_setting_says_what_it_does() -> None:
    """A variable without a description is a blank line in docs/configuration.md."""
    blank = [
        f"{cls.__name__}.{name}"
        for _, cls in settings_classes()
        for name, info in cls.model_fields.items()
        if not (info.description or "").strip()
    ]
    assert blank == []
