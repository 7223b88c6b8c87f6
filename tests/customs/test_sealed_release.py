"""The customs office of exit and the electronic seal record: a declaration names its consignment;
officers see the seal history of its containers; an export, transit or re-export selected for
physical inspection is released sealed, unopened, when the record is unbroken, and refused with
`seal_record_broken` when a seal was broken or changed. Another trader's consignment is never read."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.customs.conftest import LAPTOP, filing
from tests.logistics.conftest import (  # noqa: F401 - the fixtures, shared with tests/logistics
    CONTAINER,
    WAGON,
    carriers,
    document,
    epcis_schema,
    event,
    train,
)
from tradewindow.customs import service as customs
from tradewindow.logistics import service as logistics
from tradewindow.platform.auth import csrf_token_for
from tradewindow.platform.errors import Conflict, Forbidden, NotFound
from tradewindow.platform.tables import audit_log
from tradewindow.platform.web import SESSION_COOKIE

INTACT = {"tw:seal": {"number": "CN4471023", "kind": "elock", "status": "intact"}}
HTML = {"accept": "text/html"}
BROKEN = {"tw:seal": {"number": "CN4471023", "kind": "elock", "status": "broken"}}


@pytest.fixture
def exit_world(customs_world, request):
    """Customs sends every laptop export to physical inspection; a carrier reports the train
    CIM-0001 (REF-1) of the trader, with container CSQU3054383 under e-lock CN4471023."""
    request.getfixturevalue("epcis_schema")
    world = request.getfixturevalue("carriers")      # the same world, with the carriers added
    customs.save_lane_profile(customs_world.uow, customs_world["customs_officer"], "8012", {
        "name": "Laptops: physical inspection", "lane": "red", "probability": 1,
        "conditions": {"tariff_prefixes": ["8471"]}})
    logistics.register_consignment(world.uow, world["carrier"], train())
    return customs_world


def export(world, reference="EX-1", who="trader", **overrides) -> dict:
    body = filing(reference, {**LAPTOP, "origin": "CN"}, type="export", country_of_destination="DE",
                  **{"consignment_reference": "REF-1", **overrides})
    body.pop("country_of_dispatch")
    return customs.lodge_declaration(world.uow, world[who], body).declaration


def log_in(client, username) -> None:
    client.cookies.clear()
    response = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303


def capture(world, *events) -> None:
    logistics.capture(world.uow, world["carrier"], document(*events))


def test_the_seal_record_of_a_consignment(exit_world):
    capture(exit_world, event(0, [WAGON], "CNTNR", bizStep="departing"), event(10, [CONTAINER], "CNAKU", **INTACT))
    record = logistics.seal_record(exit_world.uow, "CIM-0001")
    assert record["consignment"]["transport_document"] == "CIM-0001"
    assert record["unbroken"] is True and record["alerts"] == []
    [container] = record["containers"]      # the wagon carries no seal of its own
    assert (container["number"], container["departure_seal"], container["unbroken"]) == (
        "CSQU3054383", "CN4471023", True)
    assert [(s["number"], s["status"], s["from_event"]) for s in container["seals"]] == [
        ("CN4471023", "intact", False)]
    # Found by client reference and by id too; not among another trader's consignments.
    assert logistics.seal_record(exit_world.uow, "REF-1")["consignment"]["id"] == record["consignment"]["id"]
    assert logistics.seal_record(exit_world.uow, record["consignment"]["id"]) is not None
    assert logistics.seal_record(exit_world.uow, "CIM-0001", trader_id=exit_world.enterprises["other_trader"]["id"]) \
        is None
    assert logistics.seal_record(exit_world.uow, "CIM-9999") is None


def test_an_unbroken_record_releases_the_export_sealed_and_unopened(exit_world):
    capture(exit_world, event(0, [WAGON], "CNTNR", bizStep="departing"), event(10, [CONTAINER], "CNAKU", **INTACT))
    declaration = export(exit_world)
    assert (declaration["lane"], declaration["status"]) == ("red", "inspection")
    seen = customs.get_declaration(exit_world.uow, exit_world["customs_officer"], declaration["id"])
    assert seen["seal_record"]["unbroken"] is True and seen["sealed_release_possible"] is True
    released = customs.release_sealed(exit_world.uow, exit_world["customs_officer"], declaration["number"])
    assert released["status"] == "released"
    [control] = released["controls"]
    assert (control["kind"], control["conform"]) == ("inspection", True)
    assert control["findings"].startswith("released under unbroken seal record CIM-0001")
    assert "CSQU3054383 seal CN4471023" in control["findings"]
    with exit_world.uow.read() as conn:
        after = conn.execute(select(audit_log.c.after).where(
            audit_log.c.object_id == declaration["id"],
            audit_log.c.action == "customs.inspection_recorded")).scalar_one()
    assert after["released_sealed"]["seals"] == {"CSQU3054383": "CN4471023"}
    # Then the office of exit records the exit as usual; a second release finds nothing pending.
    assert customs.record_exit(exit_world.uow, exit_world["customs_officer"], declaration["id"])["status"] == "exited"
    with pytest.raises(Conflict) as again:
        customs.release_sealed(exit_world.uow, exit_world["customs_officer"], declaration["id"])
    assert again.value.problems[0].code == "no_control_pending"


def test_transit_and_reexport_are_released_under_seal_too(exit_world):
    transit = filing("TR-1", {**LAPTOP, "origin": "CN"}, type="transit", transport_document="CIM-0001")
    declaration = customs.lodge_declaration(exit_world.uow, exit_world["trader"], transit).declaration
    assert declaration["lane"] == "red"
    assert customs.release_sealed(exit_world.uow, exit_world["customs_officer"], declaration["id"])["status"] \
        == "released"


@pytest.mark.parametrize("events, reason", [
    ([event(10, [CONTAINER], "CNAKU", **BROKEN)], "seal reported broken"),
    ([event(10, [CONTAINER], "CNAKU", **{"tw:seal": {"number": "KZ0000001", "status": "intact"}})],
     "seal changed from CN4471023 to KZ0000001"),
    ([event(10, [CONTAINER], "CNAKU", disposition="container_open")], "seal reported broken"),
])
def test_a_broken_or_changed_seal_refuses_the_sealed_release(exit_world, events, reason):
    capture(exit_world, *events)
    declaration = export(exit_world)
    seen = customs.get_declaration(exit_world.uow, exit_world["customs_officer"], declaration["id"])
    assert seen["seal_record"]["unbroken"] is False and seen["sealed_release_possible"] is False
    assert reason in seen["seal_record"]["containers"][0]["reasons"]
    assert seen["seal_record"]["alerts"]
    with pytest.raises(Conflict) as refused:
        customs.release_sealed(exit_world.uow, exit_world["customs_officer"], declaration["id"])
    assert refused.value.problems[0].code == "seal_record_broken"
    assert reason in refused.value.problems[0].message
    # Nothing recorded: the inspection is still pending.
    assert customs.get_declaration(exit_world.uow, exit_world["trader"], declaration["id"])["status"] == "inspection"


def test_a_switched_off_alert_rule_does_not_hide_a_broken_seal(exit_world):
    logistics.save_rule(exit_world.uow, exit_world["customs_officer"], "seal_broken", {}, active=False)
    capture(exit_world, event(10, [CONTAINER], "CNAKU", **BROKEN))
    assert logistics.seal_record(exit_world.uow, "CIM-0001")["unbroken"] is False
    with pytest.raises(Conflict) as refused:
        customs.release_sealed(exit_world.uow, exit_world["customs_officer"], export(exit_world)["id"])
    assert refused.value.problems[0].code == "seal_record_broken"


def test_only_an_export_transit_or_reexport_on_the_red_lane_is_released_under_seal(exit_world):
    imported = customs.lodge_declaration(exit_world.uow, exit_world["trader"], filing(
        "IM-1", {**LAPTOP, "origin": "DE"}, consignment_reference="REF-1")).declaration
    assert imported["lane"] == "red"
    with pytest.raises(Conflict) as refused:
        customs.release_sealed(exit_world.uow, exit_world["customs_officer"], imported["id"])
    assert refused.value.problems[0].code == "not_sealed_release_type"
    unlinked = export(exit_world, "EX-2", consignment_reference="NO-SUCH", transport_document="CIM-9999")
    with pytest.raises(Conflict) as refused:
        customs.release_sealed(exit_world.uow, exit_world["customs_officer"], unlinked["id"])
    assert refused.value.problems[0].code == "no_seal_record"


def test_tenancy_another_traders_consignment_is_never_read_and_only_customs_releases(exit_world):
    # The other trader names our consignment: it is not theirs, so there is no seal record.
    theirs = export(exit_world, "EX-OT", who="other_trader")
    seen = customs.get_declaration(exit_world.uow, exit_world["customs_officer"], theirs["id"])
    assert seen["seal_record"] is None
    with pytest.raises(Conflict) as refused:
        customs.release_sealed(exit_world.uow, exit_world["customs_officer"], theirs["id"])
    assert refused.value.problems[0].code == "no_seal_record"
    ours = export(exit_world)
    # Declarants do not see the record in the declaration, nor release anything.
    assert "seal_record" not in customs.get_declaration(exit_world.uow, exit_world["trader"], ours["id"])
    for who in ("trader", "quarantine_officer"):
        with pytest.raises(Forbidden):
            customs.release_sealed(exit_world.uow, exit_world[who], ours["id"])
    with pytest.raises(Forbidden):
        customs.seal_record(exit_world.uow, exit_world["trader"], ours["id"])
    with pytest.raises(NotFound):
        customs.get_declaration(exit_world.uow, exit_world["other_trader"], ours["id"])


def test_the_api_and_the_page(client, as_user, exit_world):
    declaration = export(exit_world)
    url = f"/api/v1/declarations/{declaration['id']}"
    record = client.get(url + "/seal-record", headers=as_user("customs_officer"))
    assert record.status_code == 200 and record.json()["unbroken"] is True
    assert client.get(url + "/seal-record", headers=as_user("trader")).status_code == 403
    assert client.post(url + "/release-sealed", headers=as_user("trader")).status_code == 403
    assert client.post(f"/api/v1/declarations/{theirs_id(exit_world)}/release-sealed",
                       headers=as_user("customs_officer")).json()["errors"][0]["code"] == "no_seal_record"
    released = client.post(url + "/release-sealed", headers=as_user("customs_officer"))
    assert released.status_code == 200 and released.json()["status"] == "released"


def theirs_id(world) -> str:
    return export(world, "EX-OT", who="other_trader")["id"]


def test_the_declaration_page_shows_the_seal_record_and_the_button(client, exit_world):
    declaration = export(exit_world)
    log_in(client, "customs_officer")
    page = client.get(f"/declarations/{declaration['id']}", headers=HTML)
    assert page.status_code == 200
    assert 'id="seal-record"' in page.text and "CN4471023" in page.text and 'data-unbroken="yes"' in page.text
    assert 'id="release-sealed-form"' in page.text
    done = client.post(f"/declarations/{declaration['id']}/release-sealed",
                       data={"csrf_token": csrf_token_for(client.cookies[SESSION_COOKIE])}, headers=HTML)
    assert done.status_code == 200 and "Released under an unbroken seal record" in done.text
    assert "released under unbroken seal record CIM-0001" in done.text
    log_in(client, "trader")
    trader_page = client.get(f"/declarations/{declaration['id']}", headers=HTML)
    assert trader_page.status_code == 200 and 'id="seal-record"' not in trader_page.text


def test_the_page_shows_why_a_broken_record_cannot_be_released_unopened(client, exit_world):
    capture(exit_world, event(10, [CONTAINER], "CNAKU", **BROKEN))
    declaration = export(exit_world)
    log_in(client, "customs_officer")
    page = client.get(f"/declarations/{declaration['id']}", headers=HTML)
    assert 'data-unbroken="no"' in page.text and "seal reported broken" in page.text
    assert 'id="release-sealed-form"' not in page.text and 'id="control-form"' in page.text
