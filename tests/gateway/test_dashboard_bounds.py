"""The dashboard's page stays bounded however many source ids the producers invent: it keeps
the camera tiles and text cards with the latest results and says how many it left out
(a real browser, results through Kafka, the real sink and /ws/live)."""

from __future__ import annotations

import pytest

from tests.gateway.browser import browser_page
from tests.gateway.conftest import Pipeline
from tests.sink import factory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_CAMERA_TILES, MAX_TEXT_CARDS = 48, 24  # dashboard.js


def _cameras(first: int, last: int) -> list[tuple]:
    return [
        factory.result_record(factory.detection(f"crowd-{i:03d}", i, [(0.1, 0.1, 0.5, 0.5)]))
        for i in range(first, last)
    ]


def _texts(first: int, last: int) -> list[tuple]:
    return [
        factory.result_record(factory.sentiment(f"chatter-{i:03d}", i)) for i in range(first, last)
    ]


def test_tiles_are_capped_newest_kept_and_the_rest_counted(pipeline: Pipeline) -> None:
    errors: list[str] = []
    with browser_page(errors) as page:
        page.goto(pipeline.url + "/")
        page.wait_for_selector("#conn.on")
        # the fixture's seed: one camera and two text sources
        page.wait_for_function(
            "() => document.querySelectorAll('.tile').length === 1"
            " && document.querySelectorAll('.text').length === 2"
        )
        pipeline.produce(_cameras(1, MAX_CAMERA_TILES) + _texts(2, MAX_TEXT_CARDS))
        page.wait_for_function(
            "([c, t]) => document.querySelectorAll('.tile').length === c"
            " && document.querySelectorAll('.text').length === t",
            arg=[MAX_CAMERA_TILES, MAX_TEXT_CARDS],
        )
        assert page.locator("#cameras-hidden").is_hidden()
        assert page.locator("#texts-hidden").is_hidden()

        # 12 more cameras and 6 more text sources: the newest take the places of the oldest
        pipeline.produce(_cameras(MAX_CAMERA_TILES, 60) + _texts(MAX_TEXT_CARDS, 30))
        page.wait_for_selector('.tile[data-camera="crowd-059"][data-boxes="1"]')
        page.wait_for_selector('.text[data-source="chatter-029"][data-points="1"]')
        page.wait_for_function(
            "() => !document.getElementById('texts-hidden').hidden"
            " && !document.getElementById('cameras-hidden').hidden"
        )
        shown = page.evaluate(
            "() => [[...document.querySelectorAll('.tile')].map(e => e.dataset.camera),"
            " [...document.querySelectorAll('.text')].map(e => e.dataset.source)]"
        )
        assert len(shown[0]) == MAX_CAMERA_TILES and len(shown[1]) == MAX_TEXT_CARDS
        assert {f"crowd-{i:03d}" for i in range(MAX_CAMERA_TILES, 60)} <= set(shown[0])
        assert {f"chatter-{i:03d}" for i in range(MAX_TEXT_CARDS, 30)} <= set(shown[1])
        assert page.locator("#cameras-hidden").text_content() == (
            "12 more cameras not shown: the dashboard keeps the 48 with the latest results"
        )
        assert page.locator("#texts-hidden").text_content() == (
            "6 more text sources not shown: the dashboard keeps the 24 with the latest results"
        )

        # a camera that was left out comes back with its next result; another one goes
        back = next(
            f"crowd-{i:03d}" for i in range(1, MAX_CAMERA_TILES) if f"crowd-{i:03d}" not in shown[0]
        )
        pipeline.produce(
            [factory.result_record(factory.detection(back, 99, [(0.2, 0.2, 0.4, 0.4)]))]
        )
        page.wait_for_selector(f'.tile[data-camera="{back}"]')
        assert page.locator(".tile").count() == MAX_CAMERA_TILES
        assert page.locator("#cameras-hidden").text_content().startswith("12 more cameras")
    assert errors == [], errors


def test_a_text_card_counts_at_most_16_labels_apart(pipeline: Pipeline) -> None:
    """A sentiment result's label is any short string the contract allows: a source whose
    results carry a new label each (a many-class model, or whoever can publish) used to grow
    the card's counts, and its drawing, with every label."""
    errors: list[str] = []
    with browser_page(errors) as page:
        page.goto(pipeline.url + "/")
        page.wait_for_selector("#conn.on")
        labels = [f"topic-{i:03d}" for i in range(200)]
        pipeline.produce(
            [
                factory.result_record(factory.sentiment("many-labels", i, label))
                for i, label in enumerate(labels)
            ]  # fmt: skip
        )
        page.wait_for_selector('.text[data-source="many-labels"][data-points="120"]')
        page.wait_for_function(
            "() => document.querySelector('.text[data-source=\"many-labels\"]')"
            ".querySelector('.info').textContent.startsWith('200 results')"
        )
        card = page.locator('.text[data-source="many-labels"]')
        assert card.get_attribute("data-labels") == "17", "16 labels and 'other'"
    assert errors == []
