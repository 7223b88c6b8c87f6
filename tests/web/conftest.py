"""Browser-test fixtures shared by the pages' tests. A module provides `base_url` (the app served
in a thread, on the data it prepared); `as_person` logs people in through the real login page."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import PASSWORD


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
