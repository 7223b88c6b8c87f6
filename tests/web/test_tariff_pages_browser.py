"""The tariff pages in a real browser (Debian chromium through Playwright): a trader searches
the tariff, changes the date, opens a line, and works out the car example in the calculator."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.support.browser import serve_in_thread
from tradewindow.tariff import service

pytestmark = pytest.mark.browser


@pytest.fixture
def site(app, world):
    service.load_demo_schedule(world.uow, world["customs_officer"])
    with serve_in_thread(app) as base_url:
        yield base_url


def log_in(page, base_url: str, next_path: str) -> None:
    page.goto(f"{base_url}/login?next={next_path}")
    page.get_by_label("Username").fill("trader")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}{next_path}")


def test_search_the_tariff_change_the_date_and_open_a_line(page, site):
    from playwright.sync_api import expect

    log_in(page, site, "/tariff")
    expect(page.get_by_role("link", name="Tariff", exact=True)).to_be_visible()
    page.get_by_label("Rates in force on").fill("2025-06-01")
    page.get_by_label("Code or words").fill("8703")
    car = page.locator("tr[data-code='87032351']")
    expect(car).to_be_visible()
    expect(page.locator("#lines tbody tr")).to_have_count(8)         # only the car lines are left
    expect(car.locator("[data-rate=mfn]")).to_have_text("15 %")
    expect(car.locator("[data-rate=consumption_tax]")).to_have_text("9 %")
    expect(car.locator("[data-rate=vat]")).to_have_text("13 %")
    expect(car).to_contain_text("小轿车")
    expect(car.locator(".badge.requirement")).to_have_text(["ccc", "import licence"])

    # The demo measures start on 2024-01-01: on an earlier day the line carries no rates.
    page.get_by_label("Rates in force on").fill("2023-06-01")
    expect(car.locator("[data-rate=mfn]")).to_have_text("—")
    page.get_by_label("Rates in force on").fill("2025-06-01")
    expect(car.locator("[data-rate=mfn]")).to_have_text("15 %")

    page.get_by_label("Code or words").fill("威士忌")
    whisky = page.locator("tr[data-code='22083000']")
    expect(whisky.locator("[data-rate=provisional]")).to_have_text("5 %")
    whisky.get_by_role("link", name="22083000").click()

    page.wait_for_url(re.compile(r"/tariff/lines/22083000\?date=2025-06-01$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Whiskies")
    expect(page.locator("#rates-in-force [data-rate=provisional]")).to_have_text("5 %")
    measures = page.locator("#measures tbody tr")
    expect(measures.filter(has_text="provisional")).to_have_count(2)
    expect(page.locator("#measures .badge.uncertain").first).to_be_visible()


def test_the_calculator_quotes_the_car_example_adds_items_and_shows_errors_inline(page, site):
    from playwright.sync_api import expect

    log_in(page, site, "/tax/quote")
    page.get_by_label("Date").fill("2025-01-15")
    first = page.locator("fieldset.quote-item").nth(0)
    first.get_by_label("Tariff code").fill("87032351")
    first.get_by_label("Origin").fill("DE")
    first.get_by_label("Currency").fill("USD")
    first.get_by_label("Customs value (CIF)").fill("50000.00")
    first.get_by_label("Quantity").fill("1")
    page.get_by_role("button", name="Calculate").click()

    result = page.locator("#quote-result")
    line = result.locator("tr.quote-line").first
    expect(line.locator("[data-amount=customs_value_cny]")).to_have_text("358,975.00")
    expect(line.locator("[data-amount=duty]")).to_have_text("53,846.25")
    expect(line.locator("[data-amount=consumption_tax]")).to_have_text("40,828.48")
    expect(line.locator("[data-amount=vat]")).to_have_text("58,974.46")
    expect(result.locator("tfoot [data-amount=total]")).to_have_text("153,649.19")
    expect(result).to_contain_text("origin DE: the MFN rate 15% applies")

    page.get_by_role("button", name="Add item").click()
    expect(page.locator("fieldset.quote-item")).to_have_count(2)
    second = page.locator("fieldset.quote-item").nth(1)
    second.get_by_label("Tariff code").fill("22042100")
    second.get_by_label("Origin").fill("FR")
    second.get_by_label("Currency").fill("EUR")
    second.get_by_label("Customs value (CIF)").fill("twelve")
    page.get_by_role("button", name="Calculate").click()

    error = page.locator("fieldset.quote-item").nth(1).locator(".error[data-field=customs_value]")
    expect(error).to_contain_text("decimal number")
    expect(page.locator("fieldset.quote-item").nth(1).get_by_label("Customs value (CIF)")).to_have_attribute(
        "aria-invalid", "true")
    expect(page.locator("#quote-result")).to_have_count(0)
    # what was typed is still there to correct
    expect(page.locator("fieldset.quote-item").nth(0).get_by_label("Tariff code")).to_have_value("87032351")

    page.locator("fieldset.quote-item").nth(1).get_by_label("Customs value (CIF)").fill("1000")
    page.get_by_role("button", name="Calculate").click()
    expect(page.locator("#quote-result tr.quote-line")).to_have_count(2)
    expect(page.locator(".error")).to_have_count(0)
