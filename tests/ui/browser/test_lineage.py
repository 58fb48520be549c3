"""The lineage view walks by clicking, from a logged prediction request to the batch that
holds it, the model version that answered it, the run that trained that version and the
dataset version the run read — and back down again."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from .conftest import Watched
from .scene import Scene

pytestmark = pytest.mark.xdist_group("browser")


def _up(watched: Watched, label: str) -> None:
    """Click the upstream record whose label matches ``label`` (a regex)."""
    link = watched.page.locator("ul.upstream a:not([data-own-page])", has_text=re.compile(label))
    assert link.count() >= 1, f"no upstream {label!r} on {watched.page.url}"
    with watched.page.expect_navigation():
        link.first.click()


def test_lineage_walks_from_a_request_to_its_data_and_back(
    scene: Scene, as_user: Callable[[str], Watched]
) -> None:
    watched = as_user("rita")
    page = watched.page
    page.goto(scene.page("lineage"))
    page.select_option("select[name=kind]", "request")
    page.fill("input[name=id]", scene.ids["request"])
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert page.url.endswith(f"/lineage/request/{scene.ids['request']}")
    assert page.locator("main table").first.locator("tbody tr").count() == 20  # its rows
    _up(watched, r"^batch of delays-api@1")
    assert "/lineage/prediction_batch/" in page.url
    _up(watched, r"^model delays@2$")
    assert "/lineage/model_version/" in page.url
    _up(watched, r"train-C0\.1")
    assert page.url.endswith(f"/lineage/run/{scene.runs['train-C0.1']}")
    _up(watched, r"flights@2")
    assert page.url.endswith(f"/lineage/dataset_version/{scene.ids['dataset_version']}")
    # ... and back down: the dataset version lists the run that read it.
    down = page.locator("ul.downstream a:not([data-own-page])", has_text="train-C0.1")
    assert down.count() == 1
    with page.expect_navigation():
        down.click()
    assert page.url.endswith(f"/lineage/run/{scene.runs['train-C0.1']}")
    own = page.locator("dl.facts a")  # the record's own page
    with page.expect_navigation():
        own.click()
    assert page.url.endswith(f"/runs/{scene.runs['train-C0.1']}")
    assert watched.clean() == []
