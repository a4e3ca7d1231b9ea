"""A segment mask is only ever drawn: its size must be one a reader can allocate and its
counts COCO's compressed alphabet ('0' to 'o'), or the record is refused as invalid."""

from __future__ import annotations

import numpy as np
import orjson
import pycocotools.mask as coco
import pytest

from streamsense.schemas.exceptions import SchemaError
from streamsense.schemas.registry import decode, encode
from streamsense.schemas.results import MAX_MASK_SIDE, RleMask, SegmentResult
from tests.sink import factory


def test_real_masks_pass() -> None:
    mask = np.asfortranarray(np.random.default_rng(1).random((300, 400)) > 0.5, dtype=np.uint8)
    counts = coco.encode(mask)["counts"].decode()
    assert RleMask(size=(300, 400), counts=counts).size == (300, 400)
    result = factory.segment("cam", 0, factory.person_mask())
    assert decode(encode(result), SegmentResult) == result


@pytest.mark.parametrize(
    ("size", "counts", "why"),
    [
        ([0, 4], "0", "greater than 0"),
        ([-1, 4], "0", "greater than 0"),
        ([4, MAX_MASK_SIDE + 1], "0", f"less than or equal to {MAX_MASK_SIDE}"),
        ([100_000, 100_000], "0", f"less than or equal to {MAX_MASK_SIDE}"),
        ([4, 4], "<img src=x onerror=alert(1)>", "should match pattern"),
        ([4, 4], "0 1", "should match pattern"),
    ],
)
def test_masks_a_reader_cannot_draw_are_refused(size: list[int], counts: str, why: str) -> None:
    doc = factory.segment("cam", 0, factory.person_mask()).to_json_dict()
    doc["mask"] = {"size": size, "counts": counts}
    with pytest.raises(SchemaError, match=why) as info:
        decode(orjson.dumps(doc), SegmentResult)
    assert "mask" in str(info.value)
