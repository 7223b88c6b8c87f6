"""The single window in headless chromium: customs sets a yellow-lane rule for cars, a trader
lodges a car through the form (which raises the licence and CCC tasks), the licensing officer
approves both in the agency queue, the customs officer records a conform document check, the
trader pays what is due, and the declaration shows released. Each user has its own browser
context. Also: a refused filing keeps its values and shows each problem next to its field."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.customs.conftest import customs_world  # noqa: F401 - the fixture, shared with tests/customs
from tests.support.browser import serve_in_thread

pytestmark = pytest.mark.browser


@pytest.fixture
def app(app):
    # The lead registers the customs pages in web/app.py; until then, add them here.
    from tradewindow.customs import pages

    if not any(getattr(route, "path", None) == "/declarations/new" for route in app.routes):
        app.include_router(pages.router)
    return app


@pytest.fixture
def base_url(app, request) -> Iterator[str]:
    request.getfixturevalue("customs_world")
    with serve_in_thread(app) as url:
        yield url


def _fill_car(page) -> None:
    page.fill("input[name=transport_document]", "CIM-CQ-DE-0042")
    page.fill("input[name=country_of_dispatch]", "DE")
    page.fill("input[name=currency]", "USD")
    page.fill("input[name=invoice_total]", "50000.00")
    item = page.locator("#items fieldset").first
    for name, value in (("tariff_code", "87032361"), ("description", "Passenger car, 2.0 l petrol"),
                        ("origin", "DE"), ("quantity", "1"), ("unit", "NAR"), ("net_mass_kg", "1650"),
                        ("gross_mass_kg", "1720"), ("value", "50000.00"), ("licence_numbers", "AIL-0001")):
        item.locator(f"input[name={name}]").fill(value)


def test_a_car_goes_from_lodging_to_release_through_an_agency_and_a_document_check(as_person, base_url):
    # Customs routes every car to the document check.
    officer = as_person("customs_officer")
    officer.click("header nav >> text=Lane rules")
    officer.wait_for_url(re.compile(r"/lane-rules"))
    officer.select_option("#profile-form select[name=office]", "8012")
    officer.fill("#profile-form input[name=name]", "Passenger cars: document check")
    officer.select_option("#profile-form select[name=lane]", "yellow")
    officer.fill("#profile-form input[name=probability]", "1")
    officer.fill("#profile-form input[name=tariff_prefixes]", "8703")
    officer.click("#profile-form button[type=submit]")
    officer.wait_for_url(re.compile(r"saved=profile"))
    assert "Passenger cars: document check" in officer.locator("table.profiles").inner_text()

    # The trader lodges a car; the preview shows the taxes the declaration is then assessed at.
    trader = as_person("trader")
    trader.click("header nav >> text=Declarations")
    trader.wait_for_url(base_url + "/declarations")
    trader.click("text=Lodge a declaration")
    trader.wait_for_url(base_url + "/declarations/new")
    _fill_car(trader)
    trader.click("#preview-button")
    preview_total = trader.locator("#preview [data-amount=total]")
    preview_total.wait_for()
    previewed = preview_total.inner_text()
    trader.click("#lodge-button")
    trader.wait_for_url(re.compile(r"/declarations/[^/?]+\?created=1$"))
    declaration_url = trader.url.split("?")[0]
    assert trader.locator("#lane").inner_text() == "yellow lane"
    assert trader.locator("#status").inner_text() == "document check"
    assert trader.locator("#total-due").inner_text() == previewed
    tasks = trader.locator("table.tasks").inner_text()
    assert "Check the China Compulsory Certification" in tasks and "Write the declared quantity off" in tasks
    number = trader.locator("#declaration-number").inner_text()

    # The licensing officer approves both tasks from the queue.
    licensing = as_person("licensing_officer")
    licensing.click("header nav >> text=Agency tasks")
    licensing.wait_for_url(re.compile(r"/agency-tasks"))
    assert licensing.locator("#tasks tr.task", has_text=number).count() == 2
    for _ in range(2):
        row = licensing.locator("#tasks tr.task", has_text=number).first
        with licensing.expect_navigation():
            row.locator("button[value=approve]").click()
    licensing.wait_for_selector("text=No tasks waiting for a decision")

    # The customs officer records a conform document check, seeing why the lane is yellow.
    officer.goto(declaration_url)
    officer.click("#why-lane summary")
    assert "Passenger cars: document check" in officer.locator("#why-lane").inner_text()
    officer.fill("#control-form textarea[name=findings]", "Invoice, licence and CCC certificate agree")
    with officer.expect_navigation():
        officer.click("#control-form button[value=yes]")
    assert officer.locator("#status").inner_text() == "taxes due"
    assert "conform" in officer.locator("table.controls").inner_text()

    # The trader pays what is due (the amount is filled in) and the goods are released.
    trader.goto(declaration_url)
    assert trader.locator("#status").inner_text() == "taxes due"
    assert trader.input_value("#pay-form input[name=amount]").replace(",", "") == previewed.replace(",", "")
    trader.fill("#pay-form input[name=reference]", "ICBC-20250101-0042")
    with trader.expect_navigation():
        trader.click("#pay-form button[type=submit]")
    assert trader.locator("#status").inner_text() == "released"
    assert "ICBC-20250101-0042" in trader.locator("table.payments").inner_text()
    timeline = trader.locator("ol.timeline li.done").all_inner_texts()
    assert [t.split("\n")[0].strip() for t in timeline] == [
        "Lodged", "Accepted", "Lane cleared", "Agency tasks done", "Paid", "Released"]

    trader.goto(base_url + "/declarations?status=released")
    assert number in trader.locator("#rows").inner_text()


def test_a_refused_filing_shows_each_problem_next_to_its_field_and_keeps_the_values(as_person, base_url):
    trader = as_person("trader")
    trader.goto(base_url + "/declarations/new")
    _fill_car(trader)
    item = trader.locator("#items fieldset").first
    item.locator("input[name=value]").fill("-5")
    item.locator("input[name=unit]").fill("KGM")
    trader.fill("input[name=currency]", "ZZZ")
    trader.click("#add-item")
    trader.locator("#items fieldset").nth(1).wait_for()
    second = trader.locator("#items fieldset").nth(1)
    second.locator("input[name=tariff_code]").fill("99999999")
    second.locator("input[name=value]").fill("10")
    with trader.expect_navigation():
        trader.click("#lodge-button")
    assert "Please correct" in trader.locator("[role=alert]").inner_text()
    currency = trader.locator("label", has=trader.locator("input[name=currency]"))
    assert "not an ISO 4217 currency" in currency.inner_text()
    first, second = trader.locator("#items fieldset").nth(0), trader.locator("#items fieldset").nth(1)
    assert "must not be negative" in first.locator("[data-field=value]").inner_text()
    assert first.locator("input[name=value]").get_attribute("aria-invalid") == "true"
    assert "declared in NAR" in first.locator("[data-field=unit]").inner_text()
    assert "No tariff line 99999999" in second.locator("[data-field=tariff_code]").inner_text()
    assert first.locator("input[name=description]").input_value() == "Passenger car, 2.0 l petrol"
    assert trader.input_value("input[name=transport_document]") == "CIM-CQ-DE-0042"
    trader.goto(base_url + "/declarations")
    assert "No declaration matches" in trader.locator("#rows").inner_text()
