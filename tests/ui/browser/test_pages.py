"""Every page of a project renders in a real browser without a console error, an uncaught
exception or a CSP violation: the crawl starts at the home page, walks each section of the
navigation and every record page linked from them."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from plinth.ui.render import NAV

from .conftest import Watched
from .scene import Scene

pytestmark = pytest.mark.xdist_group("browser")

_ID = re.compile(r"/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+)(?=/|$)")
#: Links the crawl does not follow: downloads (not pages) and the sort/page variants of the
#: runs table (test_runs covers them).
_SKIP = ("/artifact", "/logout")
#: Record pages of one kind visited at most this many times.
_PER_KIND = 1


def _kind(path: str) -> str:
    """The page kind of ``path``: ids and version numbers replaced by a placeholder."""
    return _ID.sub("/{id}", path)


def test_every_page_renders_without_errors(scene: Scene, as_user: Callable[[str], Watched]) -> None:
    watched = as_user("admin")
    page = watched.page
    assert urlsplit(page.url).path == "/"
    page.click(f"a[href='/projects/{scene.project}/runs']")
    nav = page.locator("header nav a")
    assert nav.all_inner_texts() == [label for label, _ in NAV]
    queue = [a.get_attribute("href") for a in nav.all()]
    visited: dict[str, int] = {}
    statuses: dict[str, int] = {}
    seen: set[str] = set()
    prefix = f"/projects/{scene.project}/"
    while queue:
        href = queue.pop(0)
        assert href is not None
        path = urlsplit(href).path
        kind = _kind(path)
        if href in seen or visited.get(kind, 0) >= _PER_KIND or path.endswith(_SKIP):
            continue
        if "order=" in href or "page=" in href:
            continue
        seen.add(href)
        visited[kind] = visited.get(kind, 0) + 1
        response = page.goto(scene.url + href)
        assert response is not None
        statuses[href] = response.status
        assert page.locator("main h1").count() >= 1, f"{href} has no heading"
        for link in page.locator("main a[href]").all():
            target = link.get_attribute("href")
            if target and target.startswith(prefix) and target not in seen:
                queue.append(target.split("#")[0])
    assert {h: s for h, s in statuses.items() if s != 200} == {}
    problems = watched.clean()
    assert problems == [], "\n".join(problems)
    assert watched.dialogs == []
    kinds = set(visited)
    expected = {
        "runs/{id}",
        "datasets/flights",
        "datasets/flights/{id}",
        "models/delays",
        "deployments/delays-api",
        "monitors/delays-api",
        "pipelines/runs/{id}",
        "lineage/run/{id}",
        "lineage/dataset_version/{id}",
        "lineage/model_version/{id}",
        "lineage/prediction_batch/{id}",
        "lineage/pipeline_run/{id}",
    }
    missing = {k for k in expected if prefix + k not in kinds}
    assert missing == set(), f"the crawl never reached {sorted(missing)}"


def test_the_home_page_lists_only_the_users_projects(
    scene: Scene, as_user: Callable[[str], Watched]
) -> None:
    ada = as_user("ada")
    assert ada.page.locator(f"main a[href='/projects/{scene.project}/runs']").count() == 1
    assert ada.page.locator("main a[href^='/projects/other']").count() == 0
    otto = as_user("otto")
    assert otto.page.locator("main a[href^='/projects/other']").count() >= 1
    assert otto.page.locator(f"main a[href^='/projects/{scene.project}']").count() == 0
    denied = otto.page.goto(scene.page("runs"))
    assert denied is not None
    assert denied.status == 403
    assert "logreg" not in otto.page.content()
    assert ada.clean() == []


def test_the_pages_csp_blocks_inline_script_and_the_watch_reports_it(
    scene: Scene, as_user: Callable[[str], Watched]
) -> None:
    """The harness itself: an inline script injected into a page does not run (the page's
    CSP), and the violation reaches the problems the other tests assert to be empty."""
    watched = as_user("rita")
    page = watched.page
    page.goto(scene.page("runs"))
    assert watched.clean() == []
    blocked = page.evaluate(
        """() => new Promise((resolve) => {
          document.addEventListener("securitypolicyviolation",
            (e) => resolve(window.injected === undefined ? e.violatedDirective : "ran"));
          const s = document.createElement("script");
          s.textContent = "window.injected = 1";
          document.body.appendChild(s);
        })"""
    )
    assert blocked.startswith("script-src")
    problems = watched.clean()
    assert any("CSP violation: script-src" in p for p in problems), problems
