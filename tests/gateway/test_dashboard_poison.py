"""One result the page cannot draw must not take the dashboard down (a real browser, results
through Kafka, the real sink and the gateway).

The segment contract does not check a mask's runs, so contract-valid results reached the
browser with a run of 3e13 pixels (before: every open dashboard hung in the RLE decoder for
ever); a 100000x100000 mask (now refused by the contract, still possible in Redis from an older
writer) made ``new ImageData`` throw, the initial load failed and was retried every 2 s, so no
tile and no live result was ever shown. Results an
older or foreign writer left malformed in Redis (no timings, ``detections: null``) are data the
page cannot use either: each now marks its own tile or is counted, and everything else goes on
(live messages that are not JSON no longer reach the page: the gateway drops them).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from playwright.sync_api import Page

from streamsense.schemas.registry import decode, encode
from streamsense.schemas.results import RleMask, SegmentResult
from streamsense.services.serving.writes import LayoutWriter
from tests.gateway.browser import browser_page
from tests.gateway.conftest import Pipeline
from tests.sink import factory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Fresh results stay fresh for the whole module on a loaded machine.
GATEWAY_SETTINGS = {"gateway_stale_after_s": 600.0}

#: Masks a browser cannot draw, with what the tile must say. The first is contract-valid (it
#: comes through Kafka and the sink); the contract now refuses the others' sizes, so they are
#: what an older or foreign writer may have left in Redis.
POISON_MASKS: dict[str, tuple[dict[str, Any], str]] = {
    "cam-run": ({"size": [64, 64], "counts": "0" + "o" * 9 + "0"}, "do not fit its size"),
    "cam-huge": ({"size": [100000, 100000], "counts": "0"}, "larger than"),
    "cam-neg": ({"size": [-5, 64], "counts": "0"}, "not two positive integers"),
}
VALID_POISON = "cam-run"


def _poison_segment(camera: str, seq: int, mask: dict[str, Any]) -> SegmentResult:
    seg = factory.segment(camera, seq, factory.person_mask(64, 64))
    bad = seg.model_copy(update={"mask": RleMask.model_validate(mask)})
    decode(encode(bad), SegmentResult)  # valid: it passes the sink like any other
    return bad


def _old_writer(p: Pipeline, task: str, doc: dict[str, Any]) -> None:
    """Store and publish a result as the sink would, without the contracts' checks."""
    writer = LayoutWriter(p.keys)
    value = orjson.dumps(doc)
    pipe = p.redis.pipeline(transaction=False)
    writer.result(pipe, task, doc["source_id"], value)
    writer.latest(pipe, task, doc["source_id"], value, int(time.time() * 1000))
    writer.source(pipe, task, doc["source_id"])
    pipe.execute()


def _broken_detection(camera: str, seq: int, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(
        encode(factory.detection(camera, seq, [(0.1, 0.1, 0.4, 0.4)]))
    )
    doc.update(fields)
    return doc


def _tile(page: Page, camera: str, attr: str) -> str:
    sel = f'.tile[data-camera="{camera}"][{attr}]'
    page.wait_for_selector(sel)
    value: str = page.get_attribute(sel, attr.split("=")[0]) or ""
    return value


@pytest.fixture(scope="module")
def page(pipeline: Pipeline) -> Iterator[Page]:
    records = [factory.result_record(factory.detection("cam-ok", 1, [(0.2, 0.2, 0.6, 0.6)]))]
    records.append(
        factory.result_record(_poison_segment(VALID_POISON, 1, POISON_MASKS[VALID_POISON][0]))
    )
    pipeline.produce(records)
    pipeline.wait_stream("segment", VALID_POISON, 1)
    pipeline.wait_stream("detect", "cam-ok", 1)
    for cam, (mask, _) in POISON_MASKS.items():
        if cam != VALID_POISON:
            doc = orjson.loads(encode(factory.segment(cam, 1, factory.person_mask(64, 64))))
            _old_writer(pipeline, "segment", {**doc, "mask": mask})
    _old_writer(pipeline, "detect", _broken_detection("cam-null", 1, detections=None))
    _old_writer(pipeline, "detect", _broken_detection("cam-untimed", 1, timings=None))
    # not a result at all: the gateway answers 502 for it, the page loads the others
    pipeline.redis.hset(pipeline.keys.latest("detect", "cam-list"), "json", b"[1, 2]")
    pipeline.redis.sadd(pipeline.keys.sources("detect"), "cam-list")
    errors: list[str] = []
    with browser_page(errors) as pg:
        pg.goto(pipeline.url + "/")
        pg.wait_for_selector("#conn.on")  # the initial load finished and /ws/live is open
        yield pg
    assert errors == [], errors


def test_stored_results_that_cannot_be_drawn_mark_their_own_tile(page: Page) -> None:
    assert _tile(page, "cam-ok", 'data-boxes="1"') == "1"
    for cam, (_, why) in POISON_MASKS.items():
        assert why in _tile(page, cam, "data-error"), cam
        info = page.text_content(f'.tile[data-camera="{cam}"] .info') or ""
        assert info.startswith("cannot show this result: mask"), info
    assert "not iterable" in _tile(page, "cam-null", "data-error")  # the browser's words
    # no timings: its result was skipped and counted, the others loaded
    assert int(page.get_attribute("#rate", "data-bad") or 0) >= 1
    placeholder = page.query_selector("#cameras .empty")
    assert placeholder is None, "the load did not fail"


def test_the_decoder_refuses_masks_whose_runs_do_not_fill_their_size(page: Page) -> None:
    refused = page.evaluate(
        """() => [
            {size: [2, 2], counts: "0"}, {size: [2, 2], counts: "05"}, {size: [2, 2], counts: "o"},
            {size: [2, 2], counts: "4 "}, {size: [2.5, 2], counts: "4"}, {size: [2, 2]},
            {size: [1e9, 1e9], counts: "0"}, {counts: "4"},
        ].map(rle => { try { ssRle.rleToArray(rle); return null; }
                       catch (e) { return e instanceof RangeError ? e.message : String(e); } })"""
    )
    assert all(isinstance(r, str) and r.startswith("mask") for r in refused), refused
    # pycocotools' own encoding of a 2x2 mask with one pixel set still decodes
    decoded = page.evaluate("() => Array.from(ssRle.rleToArray({size: [2, 2], counts: '013'}))")
    assert decoded == [1, 0, 0, 0]


def test_live_results_that_cannot_be_used_are_skipped_and_the_rest_go_on(
    page: Page, pipeline: Pipeline
) -> None:
    bad = page.get_attribute("#rate", "data-bad") or "0"
    mask, _ = POISON_MASKS[VALID_POISON]
    pipeline.produce([factory.result_record(_poison_segment("cam-live-bad", 2, mask))])
    pipeline.wait_stream("segment", "cam-live-bad", 1)
    pipeline.redis.publish(pipeline.keys.channel("detect", "cam-garbage"), b"{not json")
    _old_writer(pipeline, "detect", _broken_detection("cam-live-untimed", 2, timings=None))
    pipeline.produce([factory.result_record(factory.detection("cam-live-ok", 2, [(0, 0, 1, 1)]))])
    assert _tile(page, "cam-live-ok", 'data-boxes="1"') == "1"
    assert "do not fit" in _tile(page, "cam-live-bad", "data-error")
    # the untimed one is counted by the page; "{not json" never reaches it: the gateway drops
    # what is not a result as the sink publishes it (test_live_contract.py)
    page.wait_for_function(
        "n => Number(document.getElementById('rate').dataset.bad || 0) >= n", arg=int(bad) + 1
    )
    # the earlier tiles were not disturbed
    assert _tile(page, "cam-ok", 'data-boxes="1"') == "1"
