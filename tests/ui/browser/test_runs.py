"""The runs table filters and sorts in the browser, several runs compare as one chart with a
line per run, and a run named ``<script>alert(1)</script>`` is only ever text."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import Watched
from .scene import EVIL, Scene

pytestmark = pytest.mark.xdist_group("browser")

TUNING = ["logreg-a", "logreg-b", "logreg-c", EVIL]
#: The tuning runs' learning rates (scene.py's grid).
LR = {"logreg-a": 0.1, "logreg-b": 0.01, "logreg-c": 0.05, EVIL: 0.2}


def _names(watched: Watched) -> list[str]:
    """The run names of the table's rows, top to bottom."""
    return watched.page.locator("#runs-table tbody tr td:nth-child(2) a").all_inner_texts()


def test_filtering_the_runs_table_shows_only_matching_runs(
    scene: Scene, as_user: Callable[[str], Watched]
) -> None:
    watched = as_user("rita")
    page = watched.page
    page.goto(scene.page("runs"))
    assert set(_names(watched)) == set(scene.runs)
    page.fill("#runs-filter input[name=filter]", "params.lr > 0.05")
    with page.expect_navigation():
        page.click("#runs-filter button[type=submit]")
    assert sorted(_names(watched)) == sorted(n for n, lr in LR.items() if lr > 0.05)
    assert page.locator("#runs-filter input[name=filter]").input_value() == "params.lr > 0.05"
    page.fill("#runs-filter input[name=filter]", "experiment = 'training'")
    with page.expect_navigation():
        page.click("#runs-filter button[type=submit]")
    assert sorted(_names(watched)) == ["train-C0.1", "train-C1.0"]
    page.fill("#runs-filter input[name=filter]", "params.lr >")
    with page.expect_navigation():
        page.click("#runs-filter button[type=submit]")
    assert page.locator("#runs-error").is_visible()  # a bad filter says why; no rows
    assert _names(watched) == []
    assert watched.clean() == []


def test_clicking_a_column_header_sorts_the_runs(
    scene: Scene, as_user: Callable[[str], Watched]
) -> None:
    watched = as_user("rita")
    page = watched.page
    page.goto(scene.page("runs") + "?filter=experiment+%3D+%27tuning%27")
    by_lr = sorted(TUNING, key=LR.__getitem__)
    with page.expect_navigation():
        page.click("#runs-table thead a[title='sort by params.lr']")
    assert _names(watched) == by_lr[::-1]  # first click: descending
    with page.expect_navigation():
        page.click("#runs-table thead a[title='sort by params.lr']")
    assert _names(watched) == by_lr
    assert "experiment = 'tuning'" in page.locator("#runs-filter input[name=filter]").input_value()
    with page.expect_navigation():
        page.click("#runs-table thead a[title='sort by name']")
    assert _names(watched) == sorted(TUNING, reverse=True)
    assert watched.clean() == []


def test_compared_runs_draw_one_line_per_run(
    scene: Scene, as_user: Callable[[str], Watched]
) -> None:
    watched = as_user("ada")
    page = watched.page
    page.goto(scene.page("runs") + "?filter=experiment+%3D+%27tuning%27")
    compare = page.locator("#runs-compare button[type=submit]")
    assert compare.is_disabled()  # plinth.js: two runs at least
    page.check(f"#runs-table input[value='{scene.runs['logreg-a']}']")
    assert compare.is_disabled()
    page.check("#runs-table thead input[data-select-all]")
    assert compare.is_enabled()
    with page.expect_navigation():
        compare.click()
    assert "/compare" in page.url
    assert page.locator("h1").inner_text() == "Compare 4 runs"
    loss = page.locator(
        "#compare-charts svg.chart", has=page.locator("text.title", has_text="loss")
    )
    assert loss.count() == 1
    lines = loss.locator("polyline")
    assert lines.count() == 4
    colours = {lines.nth(i).get_attribute("stroke") for i in range(4)}
    assert len(colours) == 4
    titles = sorted(lines.nth(i).locator("title").text_content() or "" for i in range(4))
    assert [t.split(" (")[0] for t in titles] == sorted(TUNING)
    assert loss.bounding_box() is not None  # drawn, not just present in the markup
    lr = page.locator("#compare-params tr", has=page.locator("td", has_text="lr"))
    assert lr.first.get_attribute("class") == "diff"
    assert watched.clean() == []


def test_a_run_named_like_a_script_shows_as_text(
    scene: Scene, as_user: Callable[[str], Watched]
) -> None:
    watched = as_user("ada")
    page = watched.page
    run_id = scene.runs[EVIL]
    page.goto(scene.page("runs"))
    assert EVIL in _names(watched)
    page.goto(scene.page(f"runs/{run_id}"))
    assert EVIL in page.locator("h1").inner_text()
    page.goto(scene.page(f"compare?runs={run_id},{scene.runs['logreg-a']}"))
    assert page.locator("#compare-charts").get_by_text(EVIL).count() >= 1
    page.goto(scene.page(f"lineage/run/{run_id}"))
    assert EVIL in page.locator("h1").inner_text()
    scripts = page.locator("script").evaluate_all("(s) => s.map((e) => e.outerHTML)")
    assert scripts == ['<script src="/static/plinth.js" defer=""></script>']
    assert watched.dialogs == []
    assert watched.clean() == []
