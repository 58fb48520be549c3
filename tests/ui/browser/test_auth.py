"""Logging in and out with a password, the session cookie's flags, and what a read-only
user can do: no write control is shown to them, and a forged form post with their cookie and
a valid CSRF token is refused (403) and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from .conftest import Watched, watch
from .scene import PASSWORD, Scene

pytestmark = pytest.mark.xdist_group("browser")


def _session(page: Any) -> dict[str, Any] | None:
    found = [c for c in page.context.cookies() if c["name"] == "plinth_session"]
    return found[0] if found else None


def test_login_and_logout_with_a_password(scene: Scene, browser: Any) -> None:
    context = browser.new_context()
    try:
        watched = watch(context.new_page())
        page = watched.page
        page.goto(scene.page("runs"))
        assert urlsplit(page.url).path == "/login"  # a page needs a session: 303 to login
        page.fill("#user", "ada")
        page.fill("#password", "not the password")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
        assert _session(page) is None
        watched.clean()  # the refused login answers 401: the console reports it
        page.fill("#user", "ada")
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.url == scene.page("runs")  # back where the user was going
        cookie = _session(page)
        assert cookie is not None
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert "plinth_session" not in page.evaluate("document.cookie")  # no script reads it
        assert page.locator("header .user").inner_text() == "ada"
        with page.expect_navigation():
            page.click("header form[action='/logout'] button")
        assert urlsplit(page.url).path == "/login"
        assert _session(page) is None
        page.goto(scene.page("runs"))
        assert urlsplit(page.url).path == "/login"
        # The old cookie is dead on the server too, not only forgotten by the browser.
        context.add_cookies([cookie])
        page.goto(scene.page("runs"))
        assert urlsplit(page.url).path == "/login"
        assert watched.clean() == []
    finally:
        context.close()


def _csrf(page: Any) -> str:
    value = page.locator("header form[action='/logout'] input[name=csrf]").input_value()
    assert value
    return str(value)


def test_a_reader_sees_no_write_controls_and_a_forged_post_is_refused(
    scene: Scene, as_user: Callable[[str], Watched]
) -> None:
    run_url = scene.page(f"runs/{scene.runs['logreg-a']}")
    model_url = scene.page("models/delays")
    writer = as_user("ada")
    writer.page.goto(run_url)
    assert writer.page.locator("form#add-tag").count() == 1  # writers get the forms...
    writer.page.goto(model_url)
    assert writer.page.locator("form#set-alias").count() == 1
    reader = as_user("rita")
    page = reader.page
    page.goto(run_url)
    assert page.locator("form#add-tag").count() == 0  # ...a reader does not
    assert page.locator("main form[method=post]").count() == 0
    page.goto(model_url)
    assert page.locator("form#set-alias").count() == 0
    assert page.locator("main form[method=post]").count() == 0
    champion = page.locator("main").inner_text()
    assert "champion" in champion

    # The forms a writer would post, sent with the reader's cookie and their valid CSRF token.
    csrf = _csrf(page)
    tag = page.request.post(
        f"{run_url}/tags",
        form={"csrf": csrf, "key": "forged", "value": "yes"},
        max_redirects=0,
    )
    assert tag.status == 403
    alias = page.request.post(
        f"{model_url}/aliases",
        form={"csrf": csrf, "alias": "champion", "version": "1", "reason": "forged"},
        max_redirects=0,
    )
    assert alias.status == 403
    page.goto(run_url)
    assert "forged" not in page.locator("main").inner_text()
    page.goto(model_url)
    assert page.locator("main").inner_text() == champion  # champion still on version 2
    assert reader.clean() == []

    # The same post from the writer goes through: the 403 was the role, not the form.
    done = writer.page.request.post(
        f"{run_url}/tags",
        form={"csrf": _csrf(writer.page), "key": "checked", "value": "yes"},
        max_redirects=0,
    )
    assert done.status == 303
    page.goto(run_url)
    assert "checked" in page.locator("main").inner_text()
    # And without the CSRF token even the writer is refused.
    missing = writer.page.request.post(
        f"{run_url}/tags", form={"key": "no-csrf", "value": "yes"}, max_redirects=0
    )
    assert missing.status == 403
