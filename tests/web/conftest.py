"""Browser-test fixtures shared by the pages' tests. `base_url` is the app served in a thread on the
module's `world` (a module prepares other data by overriding `world`, or `base_url` itself);
`as_person` logs people in through the real login page."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import PASSWORD
from tests.support.browser import serve_in_thread


@pytest.fixture
def base_url(app, world) -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def as_person(browser, base_url) -> Iterator[Callable]:
    """`as_person("trader")` -> a logged-in page in a browser context of its own (so several
    people can act side by side in one test)."""
    contexts = []

    def open_page(username: str):
        context = browser.new_context()
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(base_url + "/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base_url + "/")
        return page

    yield open_page
    for context in contexts:
        context.close()
