"""Hostile strings in every field the dashboard shows, in a real browser (Debian's chromium):
nothing executes, everything reads as the text it is, and the CSP is sent and enforced.

Texts are valid data, so they travel the real path (Kafka -> sink -> Redis -> gateway).
Model names, versions, labels and source ids are refused by today's contracts; they are written
straight into Redis through the serving layer, as a writer from before the bounds (or a
compromised one) could have left them, so the browser's own defences are what is tested.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from playwright.sync_api import Page

from streamsense.schemas.registry import encode
from streamsense.services.gateway.app import STATIC
from streamsense.services.gateway.security import CSP
from streamsense.services.serving.writes import LayoutWriter
from tests.gateway.browser import browser_page
from tests.gateway.conftest import Pipeline, camera_status, publish
from tests.sink import factory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: One of each kind: a script element, event-handler attributes (in an element and breaking
#: out of an attribute), `javascript:` URLs, markup that would close a table cell.
HOSTILE = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '" autofocus onfocus="window.__pwned=1" x="',
    "javascript:window.__pwned=1",
    "<svg/onload=window.__pwned=1>",
    "</td><td><a href=javascript:window.__pwned=1>x</a>",
    "<iframe srcdoc='<script>parent.__pwned=1</script>'>",
]


def _doc(result: Any, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(encode(result))
    doc.update(fields)
    return doc


def _old_writer(p: Pipeline, task: str, doc: dict[str, Any], latest: bool = True) -> None:
    """Store and publish a result as the sink would, without the contracts' checks."""
    writer = LayoutWriter(p.keys)
    value = orjson.dumps(doc)
    pipe = p.redis.pipeline(transaction=False)
    writer.result(pipe, task, doc["source_id"], value)
    if latest:
        writer.latest(pipe, task, doc["source_id"], value, int(time.time() * 1000))
        writer.source(pipe, task, doc["source_id"])
    pipe.execute()


def _stored_results(p: Pipeline) -> None:
    """Valid ids whose latest results carry hostile names, versions and labels (one source
    per hostile string, so every one is someone's latest result)."""
    for i, bad in enumerate(HOSTILE):
        det = factory.detection(f"cam-hostile-{i}", i, [(0.1, 0.1, 0.6, 0.6)])
        doc = _doc(det, model={"name": bad, "version": bad})
        doc["detections"][0]["label"] = bad
        _old_writer(p, "detect", doc)
        sent = _doc(factory.sentiment(f"chat-hostile-{i}", i), label=bad)
        sent["model"] = {"name": f"model {bad}", "version": bad}
        sent["probs"] = {bad: 0.5, "positive": 0.5}
        _old_writer(p, "sentiment", sent)
    seg = _doc(factory.segment("cam-hostile-0", 1, factory.person_mask(64, 64)))
    seg["class_areas"] = {bad: 0.1 for bad in HOSTILE}
    _old_writer(p, "segment", seg)


@pytest.fixture(scope="module")
def hostile_page(pipeline: Pipeline) -> Iterator[tuple[Page, Any]]:
    _stored_results(pipeline)
    # Hostile texts are valid data: through Kafka and the real sink.
    records = [
        factory.result_record(factory.sentiment("reviews", 900 + i, text=bad))
        for i, bad in enumerate(HOSTILE)
    ]
    pipeline.produce(records)
    pipeline.wait_stream("sentiment", "reviews", 10 + len(HOSTILE))
    errors: list[str] = []
    with browser_page(errors) as page:
        response = page.goto(pipeline.url + "/")
        page.wait_for_selector("#conn.on")
        yield page, response
        assert page.evaluate("window.__pwned") is None
    assert errors == [], errors


def _no_active_content(page: Page) -> None:
    assert page.evaluate("window.__pwned") is None
    found = page.evaluate(
        """() => ({
            scripts: document.scripts.length,
            handlers: [...document.querySelectorAll('*')].filter(
                e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
            active: document.querySelectorAll('img, svg, a, iframe, object, embed').length,
        })"""
    )
    ours = (STATIC / "index.html").read_text().count("<script src=")
    assert found == {"scripts": ours, "handlers": 0, "active": 0}, found


def test_stored_hostile_fields_render_as_text(hostile_page: tuple[Page, Any]) -> None:
    page, response = hostile_page
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    for i in range(len(HOSTILE)):
        page.wait_for_selector(f'.tile[data-camera="cam-hostile-{i}"][data-boxes="1"]')
        page.wait_for_selector(f'.text[data-source="chat-hostile-{i}"][data-points="1"]')
    # The models table shows the hostile names and versions, as text.
    page.wait_for_function(
        "bad => [...document.querySelectorAll('#models td')].some(td => td.textContent === bad)",
        arg=HOSTILE[1],
    )
    cells = page.evaluate(
        "() => [...document.querySelectorAll('#models td')].map(td => td.textContent)"
    )
    for bad in HOSTILE:
        assert bad in cells and f"model {bad}" in cells
    # Hostile texts arrived through the real pipeline and show as text.
    page.wait_for_function(
        "bad => document.querySelector('.text[data-source=\"reviews\"] .info')"
        ".textContent.includes(bad.slice(0, 20))",
        arg=HOSTILE[-1],
    )
    _no_active_content(page)


def test_live_hostile_ids_names_and_labels_render_as_text(
    hostile_page: tuple[Page, Any], pipeline: Pipeline
) -> None:
    page, _ = hostile_page
    for i, bad in enumerate(HOSTILE):
        det = _doc(factory.detection("x", 50 + i, [(0.2, 0.2, 0.4, 0.4)]), source_id=bad)
        det["model"] = {"name": bad, "version": bad}
        det["detections"][0]["label"] = bad
        _old_writer(pipeline, "detect", det, latest=False)  # published live only
        sent = _doc(factory.sentiment("x", 50 + i, text=bad), source_id=f"t{bad}", label=bad)
        _old_writer(pipeline, "sentiment", sent, latest=False)
    names = page.wait_for_function(
        """n => { const names = [...document.querySelectorAll('.tile .name, .text .name')]
                    .map(e => e.textContent);
                  return names.length >= n && names; }""",
        arg=4 * len(HOSTILE) + 3,
    ).json_value()
    for bad in HOSTILE:
        assert bad in names and f"t{bad}" in names
    _no_active_content(page)


def test_hostile_camera_statuses_render_as_text(
    hostile_page: tuple[Page, Any], pipeline: Pipeline
) -> None:
    """Reason, source and producer are free text in the contract: hostile ones travel the real
    path (Kafka -> sink -> Redis -> /api/cameras) and show as the text they are. A status under
    an id the contract refuses (left by an older writer) is skipped by the gateway, never shown."""
    page, _ = hostile_page
    publish(
        pipeline,
        *(
            camera_status(f"cam-status-{i}", "reconnecting", reason=bad, source=bad,
                          producer=bad, interval_s=600.0)
            for i, bad in enumerate(HOSTILE)
        ),
    )  # fmt: skip
    bad_id = camera_status("x", "offline").model_copy(update={"camera_id": HOSTILE[1]})
    pipe = pipeline.redis.pipeline(transaction=False)
    LayoutWriter(pipeline.keys).camera_status(
        pipe, HOSTILE[1], encode(bad_id), written_ms=int(time.time() * 1000)
    )
    pipe.execute()
    for i, bad in enumerate(HOSTILE):
        tile = f'.tile[data-camera="cam-status-{i}"][data-state="reconnecting"]'
        page.wait_for_selector(tile)
        shown = page.evaluate(
            """sel => { const b = document.querySelector(sel + ' .camstate');
                        return [b.querySelector('.reason').textContent,
                                b.querySelector('.origin').textContent]; }""",
            tile,
        )
        assert shown == [bad, f"{bad} · {bad}"], shown
    page.wait_for_selector('#cameras[data-malformed="1"]')
    states = page.evaluate(
        "() => [...document.querySelectorAll('.tile[data-state]')].map(t => t.dataset.camera)"
    )
    assert HOSTILE[1] not in states
    _no_active_content(page)


def test_the_policy_blocks_what_a_slip_would_let_in(hostile_page: tuple[Page, Any]) -> None:
    """Markup put into the page by mistake still runs nothing: the CSP forbids inline
    handlers, and the browser reports the violation."""
    page, _ = hostile_page
    directive = page.evaluate(
        """() => new Promise(resolve => {
            document.addEventListener('securitypolicyviolation',
                e => resolve(e.violatedDirective), {once: true});
            document.body.insertAdjacentHTML(
                'beforeend', '<img id=slip src=/nope onerror="window.__pwned=1">');
        })"""
    )
    assert directive.startswith("script-src"), directive
    page.evaluate("document.getElementById('slip').remove()")
    assert page.evaluate("window.__pwned") is None
