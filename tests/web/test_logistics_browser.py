"""Logistics in headless chromium: a carrier follows its China–Europe train (Chongqing → Alashankou
→ Małaszewicze → Duisburg) on the consignment's timeline page, whose schematic SVG route map fills
in as events are captured, until a broken seal raises an alert shown on the page. Then the customs
office of exit sees the seal records on export declarations: an unbroken one is released sealed,
unopened, with one button; a broken one offers only the inspection.

Events are captured through the service with the GS1 EPCIS schema of the reference data configured
(as tests/logistics do); without the reference data these tests fail, naming what is missing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.customs.conftest import LAPTOP, customs_world, filing  # noqa: F401 - the fixture, shared with tests/customs
from tests.logistics.conftest import (  # noqa: F401 - the fixtures, shared with tests/logistics
    CONTAINER,
    WAGON,
    carriers,
    document,
    epcis_schema,
    event,
    train,
)
from tests.support.browser import serve_in_thread
from tradewindow.customs import service as customs
from tradewindow.logistics import service as logistics

pytestmark = pytest.mark.browser

BROKEN = {"tw:seal": {"number": "CN4471023", "kind": "elock", "status": "broken"}}


@pytest.fixture
def rail_world(customs_world, request):  # noqa: F811 - customs_world is the imported fixture
    """The customs world with carriers, the EPCIS schema configured, laptop exports sent to
    physical inspection, and the train CIM-0001 reported by the carrier."""
    request.getfixturevalue("epcis_schema")
    world = request.getfixturevalue("carriers")
    customs.save_lane_profile(world.uow, world["customs_officer"], "8012", {
        "name": "Laptops: physical inspection", "lane": "red", "probability": 1,
        "conditions": {"tariff_prefixes": ["8471"]}})
    world.consignment = logistics.register_consignment(world.uow, world["carrier"], train()).consignment
    return world


@pytest.fixture
def base_url(app, rail_world) -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


def capture(world, *events) -> None:
    logistics.capture(world.uow, world["carrier"], document(*events))


def reached(page) -> list[str]:
    return page.locator("svg.route-map circle.stop.reached").evaluate_all(
        "nodes => nodes.map(n => n.dataset.locode)")


def test_a_carrier_follows_its_train_to_duisburg_and_sees_the_broken_seal_alert(as_person, base_url, rail_world):
    carrier = as_person("carrier")
    carrier.click("header nav >> text=Consignments")
    carrier.wait_for_url(re.compile(r"/consignments$"))
    with carrier.expect_navigation():
        carrier.click("a:text-is('CIM-0001')")
    url = carrier.url
    assert url.endswith(f"/consignments/{rail_world.consignment['id']}")
    # Before any event: the planned route, nothing reached, nowhere yet.
    route_map = carrier.locator("svg.route-map")
    assert route_map.locator("circle.stop").evaluate_all("nodes => nodes.map(n => n.dataset.locode)") == [
        "CNTNR", "CNAKU", "PLMAL", "DEDUI"]
    assert reached(carrier) == [] and route_map.locator("path.position").count() == 0
    assert "No events yet" in carrier.locator("[data-testid=events]").inner_text()

    # Departure from Chongqing and the border crossing at Alashankou.
    capture(rail_world, event(0, [WAGON], "CNTNR", bizStep="departing"),
            event(95, [WAGON], "CNAKU", bizStep="arriving"), event(100, [WAGON], "CNAKU", bizStep="departing"))
    carrier.reload()
    assert reached(carrier) == ["CNTNR", "CNAKU"]
    assert "Now at CNAKU" in route_map.locator("path.position").inner_html()
    assert carrier.locator("[data-testid=position]").inner_text() == "CNAKU"
    assert "intact" in carrier.locator("[data-testid=seal-CSQU3054383]").inner_text()
    assert carrier.locator("[data-testid=alerts]").count() == 0

    # At Małaszewicze the e-lock reports broken; the train goes on to Duisburg.
    capture(rail_world, event(280, [CONTAINER], "PLMAL", **BROKEN),
            event(350, [WAGON], "DEDUI", bizStep="arriving"))
    carrier.reload()
    assert reached(carrier) == ["CNTNR", "CNAKU", "PLMAL", "DEDUI"]
    assert carrier.locator("[data-testid=position]").inner_text() == "DEDUI"
    assert "arrived" in carrier.locator("h1").inner_text()
    assert "broken" in carrier.locator("[data-testid=seal-CSQU3054383]").inner_text()
    alerts = carrier.locator("[data-testid=alerts] tbody tr")
    assert alerts.count() == 1
    assert "seal broken" in alerts.first.inner_text()
    assert "Seal CN4471023 of CSQU3054383" in alerts.first.inner_text() and "PLMAL" in alerts.first.inner_text()
    events = carrier.locator("[data-testid=events] tbody tr")
    assert events.count() == 5


def _export(world, reference: str) -> dict:
    body = filing(reference, {**LAPTOP, "origin": "CN"}, type="export", country_of_destination="DE",
                  consignment_reference="REF-1")
    body.pop("country_of_dispatch")
    return customs.lodge_declaration(world.uow, world["trader"], body).declaration


def test_customs_of_exit_releases_an_unbroken_container_unopened(as_person, base_url, rail_world):
    capture(rail_world, event(0, [WAGON], "CNTNR", bizStep="departing"),
            event(95, [WAGON], "CNAKU", bizStep="arriving"))
    declaration = _export(rail_world, "EX-BR-1")
    officer = as_person("customs_officer")
    officer.goto(f"{base_url}/declarations/{declaration['id']}")
    assert officer.locator("#status").inner_text() == "inspection"
    record = officer.locator("#seal-record")
    assert record.locator("#seal-record-state").inner_text() == "unbroken"
    assert "CN4471023" in record.locator("tr[data-container=CSQU3054383]").inner_text()
    with officer.expect_navigation():
        officer.click("#release-sealed-form button[type=submit]")
    assert officer.locator("#status").inner_text() == "released"
    assert "released under unbroken seal record CIM-0001" in officer.locator("table.controls").inner_text()
    assert officer.locator("#release-sealed-form").count() == 0


def test_customs_of_exit_sees_a_broken_record_and_must_inspect(as_person, base_url, rail_world):
    capture(rail_world, event(0, [WAGON], "CNTNR", bizStep="departing"),
            event(95, [CONTAINER], "CNAKU", **BROKEN))
    declaration = _export(rail_world, "EX-BR-2")
    officer = as_person("customs_officer")
    officer.goto(f"{base_url}/declarations/{declaration['id']}")
    record = officer.locator("#seal-record")
    assert record.locator("#seal-record-state").inner_text() == "broken"
    assert "seal reported broken" in record.inner_text()
    assert officer.locator("#release-sealed-form").count() == 0
    assert officer.locator("#control-form").count() == 1
