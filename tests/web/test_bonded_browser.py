"""The bonded vehicle warehouse in headless chromium: the trader admits a car from a released
bonded-entry declaration, sees it in the warehouse, asks to release it to the domestic market and
is shown the duty and taxes before confirming; the declaration is lodged at those figures, the
trader pays, and once the release is relayed the car shows in the domestic market. Another car is
re-exported without tax."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.bonded.conftest import ENTRY_DAY, VINS, lodge_entry, relay
from tests.customs.conftest import customs_world  # noqa: F401 - the fixture, shared with tests/customs
from tradewindow.bonded import service as bonded
from tradewindow.customs import service as customs
from tradewindow.platform.db import clock_at

pytestmark = pytest.mark.browser


@pytest.fixture
def world(customs_world):  # noqa: F811
    return customs_world


def test_a_car_is_admitted_released_with_its_taxes_shown_and_another_re_exported(world, as_person, base_url):
    book = bonded.open_book(world.uow, world["trader"], {"kind": "bonded_logistics", "name": "Vehicle warehouse"})
    with clock_at(ENTRY_DAY):
        entry = lodge_entry(world, "ENTRY-B", n=2)

    trader = as_person("trader")
    trader.click("header nav >> text=Bonded books")
    trader.wait_for_url(base_url + "/bonded")
    trader.click("text=Vehicle warehouse")
    trader.wait_for_url(base_url + f"/bonded/{book['id']}")
    trader.fill("#admit-form input[name=declaration]", entry["number"])
    trader.fill("#admit-form textarea[name=serials]", f"{VINS[0]}\n{VINS[1]}")
    with trader.expect_navigation():
        trader.click("#admit-form button[type=submit]")
    units = trader.locator("#units").inner_text()
    assert VINS[0] in units and VINS[1] in units and "bonded_storage" in units

    # The release shows the duty and taxes first; only the confirmed form lodges.
    trader.fill("#release-form textarea[name=serials]", VINS[0])
    with trader.expect_navigation():
        trader.click("#release-form button[type=submit]")
    quote = trader.locator("#release-quote")
    assert "Duty and taxes at today's rates" in quote.inner_text()
    quoted = trader.locator("#quote-total").inner_text()
    assert Decimal(quoted.replace(",", "")) > 0
    assert customs.list_declarations(world.uow, world["trader"], type="bonded_release")["total"] == 0
    trader.fill("#release-form input[name=client_reference]", "DEALER-B1")
    with trader.expect_navigation():
        trader.click("#release-form button[name=confirm]")
    assert re.search(r"/declarations/[^/?]+$", trader.url)
    assert trader.locator("#total-due").inner_text() == quoted
    declaration_url = trader.url

    # The licensing officer writes the licence off (and checks the CCC); the trader pays.
    declaration = customs.get_declaration(world.uow, world["trader"], declaration_url.rsplit("/", 1)[1])
    for task in declaration["agency_tasks"]:
        customs.decide_task(world.uow, world["licensing_officer"], task["id"], "approve")
    trader.goto(declaration_url)
    assert trader.locator("#status").inner_text() == "taxes due"
    trader.fill("#pay-form input[name=reference]", "ICBC-BONDED-0001")
    with trader.expect_navigation():
        trader.click("#pay-form button[type=submit]")
    assert trader.locator("#status").inner_text() == "released"
    relay(world)

    # Another car leaves again by re-export, with no tax.
    trader.goto(base_url + f"/bonded/{book['id']}")
    trader.fill("#reexport-form textarea[name=serials]", VINS[1])
    trader.fill("#reexport-form input[name=country_of_destination]", "KZ")
    trader.fill("#reexport-form input[name=client_reference]", "RX-B1")
    with trader.expect_navigation():
        trader.click("#reexport-form button[type=submit]")
    relay(world)
    trader.goto(base_url + f"/bonded/{book['id']}")
    rows = {row.locator("td").first.inner_text(): row.inner_text() for row in trader.locator("#units tbody tr").all()}
    assert "domestic_market" in rows[VINS[0]] and "reexported" in rows[VINS[1]]
    trader.click(f"text={VINS[0]}")
    history = trader.locator("body").inner_text()
    assert "release" in history and declaration["number"] in history
