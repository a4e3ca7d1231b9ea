"""API contract tests generated from the gateway's own OpenAPI document (schemathesis), run
against the live server over the real pipeline's data: every response must match its schema,
status codes must be documented, no 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from tests.gateway.conftest import CAMERA, TEXTS, Pipeline, camera_status, publish

pytestmark = pytest.mark.integration


#: Schemathesis' statuses for a rejected invalid request, plus 413: POST /api/feedback refuses an
#: oversized body by its size before it parses it.
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]


@pytest.fixture(scope="module")
def api_schema(pipeline: Pipeline) -> schemathesis.BaseSchema:
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": [*REJECTED, "5xx"]}}}
    )
    return schemathesis.openapi.from_url(f"{pipeline.url}/openapi.json", config=config)


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_generated_requests_conform(
    api_schema: schemathesis.BaseSchema, pipeline: Pipeline, mode: GenerationMode
) -> None:
    """Positive (valid) and negative (invalid) requests for every operation."""
    seen: set[str] = set()

    @given(case=api_schema.as_strategy(mode))
    @settings(
        max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: schemathesis.Case) -> None:
        seen.add(case.operation.label)
        case.call_and_validate(base_url=pipeline.url)

    check()
    # Operations without parameters have no invalid form: negative mode covers the other four
    # (three with parameters and POST /api/feedback's body).
    assert len(seen) >= (10 if mode is GenerationMode.POSITIVE else 4), seen


@pytest.mark.parametrize(
    ("template", "path_params", "query"),
    [
        ("/api/latest/{task}/{source}", {"task": "detect", "source": CAMERA}, {}),
        ("/api/latest/{task}/{source}", {"task": "segment", "source": CAMERA}, {}),
        ("/api/latest/{task}/{source}", {"task": "sentiment", "source": TEXTS[0]}, {}),
        ("/api/results/{task}/{source}", {"task": "sentiment", "source": TEXTS[1]}, {"limit": 5}),
        ("/api/results/{task}/{source}", {"task": "detect", "source": CAMERA}, {"since": "0"}),
        ("/api/thumbnail/{camera}", {"camera": CAMERA}, {}),
        ("/api/models", {}, {}),
        ("/api/stats", {}, {}),
        ("/api/sources", {}, {}),
        ("/api/cameras", {}, {}),
        ("/healthz", {}, {}),
    ],
)
def test_real_data_responses_conform(
    api_schema: schemathesis.BaseSchema,
    pipeline: Pipeline,
    template: str,
    path_params: dict[str, str],
    query: dict[str, object],
) -> None:
    """Generated sources rarely exist; these hit stored results, so the 200 bodies are checked."""
    if template == "/api/cameras":  # a status of each shape: with and without a frame, stale
        publish(
            pipeline,
            camera_status(CAMERA, interval_s=600.0),
            camera_status("yard", "reconnecting", reason="lost", last_frame_ns=None,
                          last_seq=None, target_fps=None),
            camera_status("attic", age_s=60),
        )  # fmt: skip
    case = api_schema[template]["GET"].Case(path_parameters=path_params, query=query)
    response = case.call_and_validate(base_url=pipeline.url)
    assert response.status_code == 200
