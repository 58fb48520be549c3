"""Fixtures of the browser tests: one seeded live server and one headless Chromium per
session, and pages logged in as a given user that record every console error, page error,
CSP violation and dialog.

The tests skip, naming what to install, where Chromium (``apt-get install -y chromium``)
or the Playwright package (``pip install playwright``) is missing; CI installs both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from .scene import Scene, build_scene, chromium, log_in, missing_browser

#: Reports CSP violations on the console, where the page's listener sees them. An init
#: script is injected by the driver, so the page's own CSP does not block it.
_CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`);
});
"""


@dataclass
class Watched:
    """A logged-in page and what went wrong on it so far."""

    page: Any
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def clean(self) -> list[str]:
        """The problems recorded since the last call (and forget them)."""
        found, self.problems[:] = list(self.problems), []
        return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def scene(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """The seeded server (built after the browser check, so a skip costs nothing)."""
    built = build_scene(tmp_path_factory.mktemp("ui-scene"))
    yield built
    built.stop()


def watch(page: Any) -> Watched:
    """Record console errors, uncaught exceptions, CSP violations and dialogs of ``page``."""
    watched = Watched(page)
    page.add_init_script(_CSP_REPORTER)

    def console(message: Any) -> None:
        if message.type in ("error", "warning"):
            source = message.location.get("url") or page.url
            watched.problems.append(f"{source}: console {message.type}: {message.text}")

    def dialog(opened: Any) -> None:
        watched.dialogs.append(opened.message)
        opened.dismiss()

    page.on("console", console)
    page.on("pageerror", lambda error: watched.problems.append(f"{page.url}: {error}"))
    page.on("dialog", dialog)
    return watched


@pytest.fixture(scope="session")
def _sessions() -> dict[str, Any]:
    """Each user's logged-in browser state (cookies), made once per session."""
    return {}


@pytest.fixture
def as_user(
    browser: Any, scene: Scene, _sessions: dict[str, Any]
) -> Iterator[Callable[[str], Watched]]:
    """``as_user("rita")``: a fresh browser context with that user's logged-in session."""
    contexts: list[Any] = []

    def open_as(user: str) -> Watched:
        state = _sessions.get(user)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, storage_state=state)
        contexts.append(context)
        watched = watch(context.new_page())
        if state is None:
            log_in(watched.page, scene.url, user)
            _sessions[user] = context.storage_state()
        else:
            watched.page.goto(f"{scene.url}/")
        return watched

    yield open_as
    for context in contexts:
        context.close()
