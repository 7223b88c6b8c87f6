"""Cross-border e-commerce pages in headless chromium: the platform searches a parcel by the start
of its order number, opens it and sees the buyer's identity number masked; the customs officer sees
it in full and reaches the buyer's year; the live dashboard updates by itself when parcels are
decided."""

from __future__ import annotations

import pytest

from tests.ecommerce.conftest import BUYER, Parcel, cbec_world, send_all  # noqa: F401 - the fixture
from tradewindow.ecommerce import model

pytestmark = pytest.mark.browser


@pytest.fixture
def world(cbec_world):  # noqa: F811
    return cbec_world


def test_a_parcel_is_found_opened_masked_for_the_platform_and_the_dashboard_follows(world, as_person, base_url):
    for n in range(3):
        send_all(world.uow, world, Parcel(order_no=f"TM-1111-{n:04d}"))
    spoilt = Parcel(order_no="JD-1111-0001")
    spoilt.waybill["consignee_name"] = "李四"
    send_all(world.uow, world, spoilt)

    platform = as_person("platform")
    platform.click("header nav >> text=E-commerce parcels")
    platform.wait_for_url(base_url + "/cbec/parcels")
    platform.fill("input[name=q]", "tm-1111-0002")
    with platform.expect_navigation():
        platform.click("text=Search")
    rows = platform.locator("#parcels tbody tr")
    assert rows.count() == 1 and "TM-1111-0002" in rows.inner_text()
    platform.click("#parcels >> text=TM-1111-0002")
    platform.wait_for_url(base_url + "/cbec/parcels/TM-1111-0002")
    assert platform.locator("#parcel-status").inner_text().startswith("release")
    shown = platform.locator("#buyer").inner_text()
    assert shown == model.mask_id(BUYER) and BUYER not in platform.content()

    officer = as_person("customs_officer")
    officer.goto(base_url + "/cbec/parcels/TM-1111-0002")
    assert officer.locator("#buyer").inner_text() == BUYER
    officer.goto(base_url + "/cbec/parcels")
    officer.fill("#buyer-year-form input[name=buyer]", BUYER)
    officer.fill("#buyer-year-form input[name=year]", "2026")
    with officer.expect_navigation():
        officer.click("#buyer-year-form button")
    assert officer.url.endswith(f"/cbec/buyers/{BUYER}/year/2026")
    assert "900.00 of 26000.00 CNY used" in officer.content()

    officer.click("header nav >> text=E-commerce live")
    officer.wait_for_url(base_url + "/cbec/live")
    assert officer.locator("#live-release").inner_text() == "3"
    assert "consignee_mismatch" in officer.locator("#live-reasons").inner_text()
    assert officer.locator("#live-chart").is_visible()
    for n in range(3, 5):                       # decided while the officer watches
        send_all(world.uow, world, Parcel(order_no=f"TM-1111-{n:04d}"))
    officer.wait_for_function("document.getElementById('live-release').textContent.trim() === '5'",
                              timeout=10_000)
    assert float(officer.locator("#live-rate").inner_text()) > 0
