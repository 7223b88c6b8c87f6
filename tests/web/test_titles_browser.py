"""A railway bill of lading through the pages in headless chromium: the carrier issues it, the
shipper endorses it to the buyer, the buyer pledges it to its bank, the bank releases the pledge,
and the buyer surrenders it against delivery; the chain verifies at every step."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import PASSWORD, USCC
from tests.support.browser import serve_in_thread
from tests.titles.conftest import titles_world  # noqa: F401 - the carrier, the second bank, custodial keys

pytestmark = pytest.mark.browser

NUMBER = "CQDUI2026000777"


@pytest.fixture
def base_url(app, titles_world) -> Iterator[str]:  # noqa: F811
    with serve_in_thread(app) as url:
        yield url


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")


def _switch(page, base_url: str, username: str) -> None:
    page.click("button:has-text('Log out')")
    page.wait_for_url(re.compile(r"/login$"))
    _log_in(page, base_url, username)
    page.goto(f"{base_url}/titles/{NUMBER}")


def _verified(page) -> None:
    assert "chain verified" in page.locator("#verification").inner_text()


def test_a_bill_is_issued_endorsed_pledged_released_and_surrendered_through_the_pages(page, base_url):
    _log_in(page, base_url, "carrier")
    page.click("header nav >> text=Bills of lading")
    page.wait_for_url(base_url + "/titles")
    page.click("text=Issue a bill of lading")
    page.fill("input[name=bol_number]", NUMBER)
    page.fill("input[name=shipper_uscc]", USCC["trader"])
    page.fill("textarea[name=goods_description]", "Laptop computers, 40 pallets")
    page.fill("input[name=packages]", "40")
    page.fill("input[name=gross_mass_kg]", "12850.5")
    page.fill("input[name=containers]", "CSQU3054384")      # a wrong check digit first
    page.fill("input[name=place_of_receipt]", "CNCKG")
    page.fill("input[name=place_of_delivery]", "DEDUI")
    page.click("button:has-text('Issue')")
    assert "not a valid ISO 6346 container number" in page.locator("#containers-error").inner_text()
    assert page.input_value("input[name=bol_number]") == NUMBER
    page.fill("input[name=containers]", "CSQU3054383, MSKU9070323")
    page.click("button:has-text('Issue')")
    page.wait_for_url(re.compile(rf"/titles/{NUMBER}\?done=issue$"))
    assert page.locator("#bill-status").inner_text() == "active"
    assert page.locator("#holder").inner_text() == "Yangtze Auto Import"
    assert page.locator("#chain tbody tr").count() == 1
    _verified(page)

    # The shipper endorses the bill to the buyer; a mistyped credit code is refused first.
    _switch(page, base_url, "trader")
    page.fill("#endorse-form input[name=to_uscc]", USCC["spare2"])
    page.click("#endorse-form button")
    assert "No active enterprise" in page.locator(".errors").inner_text()
    page.fill("#endorse-form input[name=to_uscc]", USCC["other_trader"])
    page.click("#endorse-form button")
    page.wait_for_url(re.compile(r"\?done=endorse$"))
    assert page.locator("#holder").inner_text() == "Other Trader"
    assert page.locator("#endorse-form").count() == 0          # no longer the holder
    _verified(page)

    _switch(page, base_url, "other_trader")
    page.fill("#pledge-form input[name=bank_uscc]", USCC["bank"])
    page.click("#pledge-form button")
    page.wait_for_url(re.compile(r"\?done=pledge$"))
    assert page.locator("#bill-status").inner_text() == "pledged"
    assert page.locator("#pledgee").inner_text() == "Changjiang Bank"
    assert page.locator("#endorse-form").count() == 0 and page.locator("#surrender-form").count() == 0

    _switch(page, base_url, "bank")
    page.click("#release-form button")
    page.wait_for_url(re.compile(r"\?done=release-pledge$"))
    assert page.locator("#bill-status").inner_text() == "active"

    _switch(page, base_url, "other_trader")
    page.click("#surrender-form button")
    page.wait_for_url(re.compile(r"\?done=surrender$"))
    assert page.locator("#bill-status").inner_text() == "surrendered"
    assert page.locator("#holder").inner_text() == "Yuxinou Logistics"
    actions = page.locator("#chain tbody tr td:nth-child(2)").all_inner_texts()
    assert actions == ["issue", "endorse", "pledge", "release pledge", "surrender"]
    _verified(page)
