"""The consignment pages: the list with the latest alerts, and the timeline of a consignment or a
container with its schematic route map drawn as inline SVG."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.logistics.conftest import CONTAINER, WAGON, document, event, train
from tradewindow.logistics import service

HTML = {"accept": "text/html"}


@pytest.fixture
def on_the_way(carriers, epcis_schema):
    consignment = service.register_consignment(carriers.uow, carriers["carrier"], train()).consignment
    service.capture(carriers.uow, carriers["carrier"], document(
        event(0, [WAGON], "CNTNR", bizStep="departing"), event(120, [WAGON], "CNAKU", bizStep="arriving"),
        event(130, [CONTAINER], "KZDOS", **{"tw:seal": {"number": "CN4471023", "status": "broken"}})))
    return consignment


def log_in(client, username):
    client.cookies.clear()
    response = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303


def test_the_list_shows_consignments_and_alerts(client, on_the_way):
    log_in(client, "trader")
    page = client.get("/consignments", headers=HTML)
    assert page.status_code == 200
    assert "CIM-0001" in page.text and "CNTNR → CNAKU → PLMAL → DEDUI" in page.text
    assert "seal broken" in page.text and "off route" in page.text
    assert 'href="/consignments"' in page.text       # in the navigation


def test_the_timeline_draws_the_route_where_it_is_and_its_seal(client, on_the_way):
    log_in(client, "customs_officer")
    page = client.get(f"/consignments/{on_the_way['id']}", headers=HTML)
    assert page.status_code == 200
    svg = re.search(r"<svg class=\"route-map\".*?</svg>", page.text, re.S)[0]
    assert re.findall(r'class="stop reached" data-locode="(\w+)"', svg) == []   # order: class then data
    assert re.findall(r'data-locode="(\w+)" class="stop reached"', svg) == ["CNTNR", "CNAKU"]
    assert re.findall(r'data-locode="(\w+)" class="stop"', svg) == ["PLMAL", "DEDUI"]
    assert 'data-locode="KZDOS" class="off-route"' in svg
    assert 'class="position"' in svg and "Now at KZDOS" in svg
    assert "<img" not in page.text and "tile" not in svg
    assert "CN4471023" in page.text and "broken" in page.text
    assert "24.0 h late" in page.text


def test_a_container_has_its_own_timeline_page(client, on_the_way):
    log_in(client, "carrier")
    page = client.get("/containers/CSQU3054383", headers=HTML)
    assert page.status_code == 200 and "Container CSQU3054383" in page.text


def test_a_stranger_sees_no_timeline(client, on_the_way):
    log_in(client, "other_trader")
    assert client.get(f"/consignments/{on_the_way['id']}", headers=HTML).status_code == 404
    assert "CIM-0001" not in client.get("/consignments", headers=HTML).text
