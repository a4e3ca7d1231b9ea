"""The dashboard in a real browser (Debian's chromium via Playwright) over the real pipeline:
a camera tile with the frame, its boxes and the person mask and its state; a sentiment timeline
that grows as results arrive. ``STREAMSENSE_SAVE_SCREENSHOT=1`` also copies the screenshot to
docs/img/."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page
from pycocotools import mask as mask_utils

from tests.gateway.browser import browser_page
from tests.gateway.conftest import CAMERA, SOURCE, Pipeline, camera_frame, camera_status, publish
from tests.sink import factory

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def page(pipeline: Pipeline) -> Iterator[Page]:
    errors: list[str] = []
    with browser_page(errors) as pg:
        pg.goto(pipeline.url + "/")
        pg.wait_for_selector("#conn.on")  # subscribed to /ws/live
        yield pg
    assert errors == [], errors


def test_js_rle_decoder_matches_pycocotools(page: Page) -> None:
    rng = np.random.default_rng(7)
    masks = [
        factory.person_mask(90, 120),
        (rng.random((37, 53)) > 0.5).astype(np.uint8),
        np.ones((8, 5), np.uint8),
        np.zeros((4, 4), np.uint8),
    ]
    for m in masks:
        rle = mask_utils.encode(np.asfortranarray(m))
        js = page.evaluate(
            "rle => Array.from(ssRle.rleToArray(rle))",
            {"size": list(rle["size"]), "counts": rle["counts"].decode()},
        )
        assert np.array_equal(np.array(js, np.uint8).reshape(m.shape), m)


def test_camera_tile_shows_frame_boxes_and_mask(page: Page, pipeline: Pipeline) -> None:
    # The module's seed frame may be older than the thumbnail TTL by now on a slow machine:
    # the camera sends a new one, and its detections make the page fetch it.
    camera_frame(pipeline, 10)
    tile = page.locator(f'.tile[data-camera="{CAMERA}"]')
    page.wait_for_selector(f'.tile[data-camera="{CAMERA}"][data-thumb="1"]')
    assert int(tile.get_attribute("data-boxes") or 0) == 2
    assert int(tile.get_attribute("data-mask") or 0) == int(factory.person_mask().sum())
    # The canvas really holds the photo (not a black frame) with a box stroke drawn on it.
    std = page.evaluate(
        """cam => { const c = document.querySelector(`.tile[data-camera="${cam}"] canvas`);
                    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let s = 0, s2 = 0, n = d.length / 4;
                    for (let i = 0; i < d.length; i += 4) { s += d[i]; s2 += d[i] * d[i]; }
                    return Math.sqrt(s2 / n - (s / n) ** 2); }""",
        CAMERA,
    )
    assert std > 20, "the tile looks blank"
    assert "2 objects" in (tile.locator(".info").text_content() or "")


def test_sentiment_timeline_grows_live(page: Page, pipeline: Pipeline, tmp_path: Path) -> None:
    card = page.locator('.text[data-source="chat"]')
    page.wait_for_selector('.text[data-source="chat"][data-points="10"]')
    labels = ["positive", "positive", "neutral", "negative", "positive"]
    for round_ in range(2):
        seqs = range(500 + 5 * round_, 505 + 5 * round_)
        pipeline.produce(
            [factory.result_record(factory.sentiment("chat", s, labels[s % 5])) for s in seqs]
        )
        want = 15 + 5 * round_
        page.wait_for_selector(f'.text[data-source="chat"][data-points="{want}"]')
    assert card.get_attribute("data-points") == "20"
    page.wait_for_selector("#stats tbody tr")
    page.wait_for_selector("#models tbody tr td:has-text('centernet')")

    _screenshot(page, tmp_path, save=False)


def _screenshot(page: Page, tmp_path: Path, save: bool) -> None:
    """The whole page as PNG; with ``save`` and STREAMSENSE_SAVE_SCREENSHOT=1, the docs' copy."""
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if save and os.environ.get("STREAMSENSE_SAVE_SCREENSHOT") == "1":
        target = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


def test_camera_states_show_on_tiles(page: Page, pipeline: Pipeline, tmp_path: Path) -> None:
    """Each camera's state from ``/api/cameras`` on its tile; a camera with a status and no
    result yet gets a tile; a status past three intervals reads as stale."""
    publish(
        pipeline,
        camera_status(CAMERA, interval_s=60.0),
        camera_status("yard", "reconnecting", reason="lost: cannot open stream", fps=0.0,
                      last_frame_ns=None, last_seq=None, target_fps=None, reconnects=1,
                      interval_s=60.0),
        camera_status("attic", age_s=120),  # its producer was killed two minutes ago
    )  # fmt: skip
    for camera, state in ((CAMERA, "online"), ("yard", "reconnecting"), ("attic", "stale")):
        page.wait_for_selector(f'.tile[data-camera="{camera}"][data-state="{state}"]')

    def block(camera: str) -> dict[str, str]:
        return page.evaluate(
            """cam => { const b = document.querySelector(`.tile[data-camera="${cam}"] .camstate`);
                        const t = s => b.querySelector(s).textContent;
                        return {state: t('.state'), frame: t('.frame'), rate: t('.rate'),
                                reconnects: t('.reconnects'), reason: t('.reason'),
                                origin: t('.origin')}; }""",
            camera,
        )

    online = block(CAMERA)
    assert online["state"] == "online" and online["rate"] == "4.8 / 5 fps"
    assert online["frame"].startswith("last frame ") and online["frame"].endswith(" ago")
    assert online["reconnects"] == "2 reconnects" and online["reason"] == ""
    assert online["origin"] == f"{SOURCE} · produce-cameras@host:41"
    yard = block("yard")
    assert yard == {
        "state": "reconnecting", "frame": "no frame yet", "rate": "0.0 fps (source rate)",
        "reconnects": "1 reconnect", "reason": "lost: cannot open stream",
        "origin": f"{SOURCE} · produce-cameras@host:41",
    }  # fmt: skip
    # No result and no thumbnail: the frame area says what the status says, not a bare black box.
    page.wait_for_selector('.tile[data-camera="yard"][data-offline="1"]')
    assert page.locator('.tile[data-camera="yard"] .info').text_content() == "camera reconnecting"
    attic = block("attic")
    assert attic["state"] == "stale"
    assert re.fullmatch(
        r"no status for 1\d\d s: its producer is gone \(it last said online\)", attic["reason"]
    ), attic["reason"]
    _screenshot(page, tmp_path, save=True)  # the docs' picture: results and camera states
