"""The dashboard draws every mask the result contract allows (sides 1..16384), reduced to the
tile while its runs are decoded, and still refuses what the contract refuses (a real browser,
the result through Kafka, the real sink and the gateway).

Before: ``rle.js`` refused masks over 4096 x 4096 pixels, so a valid 12000 x 16384 segment result
marked its tile "cannot show this result: mask of 12000x16384 pixels is larger than 16777216"
and no mask was drawn; drawing one would have allocated width x height x 4 bytes (1 GiB at
16384 x 16384).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page
from pycocotools import mask as mask_utils

from streamsense.schemas.registry import decode, encode
from streamsense.schemas.results import MAX_MASK_SIDE, RleMask, SegmentResult
from tests.gateway.browser import browser_page
from tests.gateway.conftest import Pipeline
from tests.sink import factory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The camera's result stays fresh (drawn, not "offline") for the whole module.
GATEWAY_SETTINGS = {"gateway_stale_after_s": 600.0}
CAMERA = "cam-large-mask"
H, W = 12000, 16384
#: The set rectangle: rows [Y0, Y1), columns [X0, X1).
Y0, Y1, X0, X1 = H // 4, H // 2, W // 2, 3 * W // 4


def _rectangle(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> dict[str, Any]:
    """A rectangle's COCO RLE, from its runs (a 12000 x 16384 array is never made)."""
    tall = y1 - y0
    runs = [x0 * h + y0]
    for x in range(x0, x1):
        runs += [tall, h - tall if x < x1 - 1 else h - y1 + (w - x1) * h]
    rle = mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)
    assert int(mask_utils.area(rle)) == tall * (x1 - x0)
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


RECT = _rectangle(H, W, Y0, Y1, X0, X1)
ONES = (Y1 - Y0) * (X1 - X0)


@pytest.fixture(scope="module")
def page(pipeline: Pipeline) -> Iterator[Page]:
    seg = factory.segment(CAMERA, 1, factory.person_mask(64, 64))
    big = seg.model_copy(update={"mask": RleMask.model_validate(RECT), "width": W, "height": H})
    decode(encode(big), SegmentResult)  # contract-valid: the sink stores it like any other
    pipeline.produce([factory.result_record(big)])
    pipeline.wait_stream("segment", CAMERA, 1)
    errors: list[str] = []
    with browser_page(errors) as pg:
        pg.goto(pipeline.url + "/")
        pg.wait_for_selector("#conn.on")
        yield pg
    assert errors == [], errors


def test_a_mask_larger_than_4096_a_side_is_drawn_in_its_tile(page: Page) -> None:
    tile = f'.tile[data-camera="{CAMERA}"]'
    page.wait_for_selector(f'{tile}[data-mask="{ONES}"]')
    assert page.get_attribute(tile, "data-error") is None
    inside, outside = page.evaluate(
        """([sel, pts]) => {
            const c = document.querySelector(sel + " canvas"), ctx = c.getContext("2d");
            return pts.map(([fx, fy]) => Array.from(
                ctx.getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data));
        }""",
        [tile, [[(X0 + X1) / 2 / W, (Y0 + Y1) / 2 / H], [0.2, 0.8]]],
    )
    assert inside[2] > 60 and inside[2] > inside[0], f"the mask's blue over black: {inside}"
    assert max(outside[:3]) < 10, f"no mask outside the rectangle: {outside}"


def test_large_masks_are_reduced_while_decoded_never_allocated_in_full(page: Page) -> None:
    full = {
        "size": [MAX_MASK_SIDE, MAX_MASK_SIDE],
        "counts": _rectangle(MAX_MASK_SIDE, MAX_MASK_SIDE, 0, MAX_MASK_SIDE, 0, MAX_MASK_SIDE)[
            "counts"
        ],
    }
    drawn = page.evaluate(
        """rles => rles.map(rle => {
            const img = ssRle.rleToImageData(rle, [255, 0, 0, 200]);
            let set = 0, opaque = 0;
            for (let i = 3; i < img.data.length; i += 4) {
                if (img.data[i]) set += 1;
                if (img.data[i] === 200) opaque += 1;
            }
            return [img.width, img.height, img.ones, set, opaque];
        })""",
        [RECT, full],
    )
    side = page.evaluate("() => ssRle.MAX_DRAWN_SIDE")
    (w, h, ones, set_, opaque), (fw, fh, fones, fset, fopaque) = drawn
    assert (w, h) == (side, round(H * side / W)) and ones == ONES
    # the rectangle covers a quarter of the columns and of the rows: so do its drawn pixels
    assert abs(set_ - w * h / 16) <= w + h and opaque >= w * h / 16 - 2 * (w + h)
    assert (fw, fh, fones) == (side, side, MAX_MASK_SIDE**2) and fset == fopaque == side * side


def test_the_contracts_bounds_hold_in_the_browser(page: Page) -> None:
    assert page.evaluate("() => ssRle.MAX_MASK_SIDE") == MAX_MASK_SIDE, "one home: schemas"
    answers = page.evaluate(
        """sides => sides.map(([h, w]) => {
            try { return ssRle.rleToImageData({size: [h, w], counts: "0"}, [1, 1, 1, 1]).ones; }
            catch (e) { return e instanceof RangeError ? e.message : String(e); } })""",
        [[MAX_MASK_SIDE + 1, 1], [1, MAX_MASK_SIDE + 1], [0, 4], [100000, 100000]],
    )
    assert all(isinstance(a, str) and a.startswith("mask") for a in answers), answers
    assert "larger than 16384 a side" in answers[0]
    # the largest side the contract allows is taken (its runs still have to fill it)
    edge = _rectangle(1, MAX_MASK_SIDE, 0, 1, 0, MAX_MASK_SIDE)
    assert (
        page.evaluate("rle => ssRle.rleToImageData(rle, [1, 1, 1, 1]).ones", edge) == MAX_MASK_SIDE
    )
