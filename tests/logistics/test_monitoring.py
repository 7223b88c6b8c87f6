"""Monitoring rules kept as data raise alerts once each (not on every later event), to the trader,
the carriers and customs through the notifications context."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import USCC
from tests.logistics.conftest import CONTAINER, T0, WAGON, document, event, train
from tradewindow.logistics import service
from tradewindow.platform.errors import Forbidden, ValidationFailed
from tradewindow.platform.tables import outbox_events


@pytest.fixture
def consignment(carriers, epcis_schema):
    return service.register_consignment(carriers.uow, carriers["carrier"], train()).consignment


def capture(world, *events):
    return service.capture(world.uow, world["carrier"], document(*events))


def alerts(world, kind=None):
    return service.list_alerts(world.uow, world["customs_officer"], kind=kind)["items"]


def test_a_train_on_plan_raises_nothing_and_arrives(carriers, consignment):
    capture(carriers, event(0, [WAGON], "CNTNR", bizStep="departing"),
            event(95, [WAGON], "CNAKU", bizStep="arriving"), event(100, [WAGON], "CNAKU", bizStep="departing"),
            event(280, [WAGON], "PLMAL"), event(350, [WAGON], "DEDUI", bizStep="arriving"))
    assert alerts(carriers) == []
    timeline = service.timeline(carriers.uow, carriers["trader"], consignment["id"])
    assert timeline["consignment"]["status"] == "arrived"
    assert timeline["position"]["location"] == "DEDUI"
    assert timeline["eta"]["arrived"] == T0 + timedelta(hours=350)
    # Events on the wagon concern the container it carries.
    assert all("CSQU3054383" in e["equipment"] for e in timeline["events"])
    assert timeline["consignment"]["route"][1]["actual_departure"] == T0 + timedelta(hours=100)


def test_a_broken_seal_raises_one_alert_and_shows_in_the_seal_history(carriers, consignment):
    broken = {"tw:seal": {"number": "CN4471023", "kind": "elock", "status": "broken"}}
    capture(carriers, event(10, [CONTAINER], "CNTNR", **broken))
    capture(carriers, event(11, [CONTAINER], "CNTNR", **broken), event(12, [CONTAINER], "CNAKU", **broken))
    found = alerts(carriers)
    assert [a["kind"] for a in found] == ["seal_broken"]
    assert found[0]["equipment"] == "CSQU3054383" and "CN4471023" in found[0]["message"]
    timeline = service.timeline(carriers.uow, carriers["trader"], consignment["id"])
    container = next(u for u in timeline["equipment"] if u["number"] == "CSQU3054383")
    assert container["seal"]["status"] == "broken"
    assert [(s["number"], s["status"]) for s in timeline["seal_history"]] == [
        ("CN4471023", "intact"), ("CN4471023", "broken")]


def test_a_container_opened_before_its_destination_counts_as_a_broken_seal(carriers, consignment):
    capture(carriers, event(10, [CONTAINER], "CNAKU", disposition="container_open"))
    assert [a["kind"] for a in alerts(carriers)] == ["seal_broken"]


def test_opening_at_the_destination_is_expected(carriers, consignment):
    capture(carriers, event(350, [CONTAINER], "DEDUI", disposition="container_open"))
    assert alerts(carriers) == []


def test_a_changed_seal_number_raises_one_alert(carriers, consignment):
    new_seal = {"tw:seal": {"number": "KZ0000001", "status": "intact"}}
    capture(carriers, event(100, [CONTAINER], "CNAKU", **new_seal), event(101, [CONTAINER], "CNAKU", **new_seal))
    found = alerts(carriers)
    assert [a["kind"] for a in found] == ["seal_changed"]
    assert found[0]["details"]["from"] == "CN4471023" and found[0]["details"]["to"] == "KZ0000001"


def test_dwell_beyond_the_threshold_raises_one_alert(carriers, consignment):
    capture(carriers, event(96, [WAGON], "CNAKU"), event(120, [WAGON], "CNAKU"))
    assert alerts(carriers) == []
    capture(carriers, event(150, [WAGON], "CNAKU"), event(160, [WAGON], "CNAKU"))
    found = alerts(carriers, "dwell_exceeded")
    # The wagon and the container it carries have each stood too long; once each.
    assert sorted(a["equipment"] for a in found) == ["C701234567", "CSQU3054383"]


def test_the_dwell_check_finds_equipment_nobody_reports_on(carriers, consignment):
    capture(carriers, event(96, [WAGON], "CNAKU"))
    assert service.check_dwell(carriers.uow, carriers["customs_officer"], T0 + timedelta(hours=120)) == 0
    assert service.check_dwell(carriers.uow, carriers["customs_officer"], T0 + timedelta(hours=200)) == 2
    assert service.check_dwell(carriers.uow, carriers["customs_officer"], T0 + timedelta(hours=300)) == 0
    with pytest.raises(Forbidden):
        service.check_dwell(carriers.uow, carriers["carrier"])


def test_a_unit_that_departed_is_not_standing_anywhere_for_the_dwell_check(carriers, consignment):
    capture(carriers, event(96, [WAGON], "CNAKU", bizStep="arriving"),
            event(100, [WAGON], "CNAKU", bizStep="departing"))
    assert service.check_dwell(carriers.uow, carriers["customs_officer"], T0 + timedelta(hours=200)) == 0
    capture(carriers, event(280, [WAGON], "PLMAL", bizStep="arriving"))
    assert service.check_dwell(carriers.uow, carriers["customs_officer"], T0 + timedelta(hours=400)) == 2


def test_a_place_off_the_planned_route_raises_one_alert(carriers, consignment):
    capture(carriers, event(100, [WAGON], "KZDOS"), event(110, [WAGON], "KZDOS"))
    found = alerts(carriers)
    assert [a["kind"] for a in found] == ["off_route"]
    assert found[0]["details"]["location"] == "KZDOS"


def test_late_arrival_beyond_the_threshold_raises_one_alert_and_moves_the_eta(carriers, consignment):
    capture(carriers, event(106, [WAGON], "CNAKU", bizStep="arriving"))
    assert alerts(carriers) == []          # 10 hours late: within the 12 allowed
    capture(carriers, event(310, [WAGON], "PLMAL", bizStep="arriving"), event(312, [WAGON], "PLMAL"))
    found = alerts(carriers)
    assert [a["kind"] for a in found] == ["late_arrival"]
    assert found[0]["details"]["hours_late"] == "22.0"
    eta = service.get_consignment(carriers.uow, carriers["trader"], consignment["id"])["eta"]
    assert eta["delay_minutes"] == 22 * 60
    assert eta["estimated"] == T0 + timedelta(hours=360 + 22)


def test_a_temperature_excursion_raises_one_alert(carriers, epcis_schema):
    service.register_consignment(carriers.uow, carriers["carrier"], train(temperature={"min": "-25", "max": "-18"}))

    def reading(hours, celsius):
        return event(hours, [CONTAINER], "CNTNR", sensorElementList=[
            {"sensorReport": [{"type": "Temperature", "value": celsius, "uom": "CEL"}]}])

    capture(carriers, reading(1, -20), reading(2, -18.3))
    assert alerts(carriers) == []          # within the half degree tolerance
    capture(carriers, reading(3, -10.5), reading(4, -5))
    found = alerts(carriers)
    assert [a["kind"] for a in found] == ["temperature_excursion"]
    assert found[0]["details"]["celsius"] == "-10.5"


def test_alerts_notify_the_trader_and_the_carriers_and_customs_sees_them(carriers, consignment):
    capture(carriers, event(100, [WAGON], "KZDOS"))
    with carriers.uow.read() as conn:
        row = conn.execute(select(outbox_events).where(outbox_events.c.event_type == "logistics.alert_raised")).one()
    assert row.owner_enterprise_id == carriers.enterprises["trader"]["id"]
    spec = row.payload["notification"]
    assert spec["code"] == "logistics.alert_raised"
    assert spec["audiences"] == [carriers.enterprises["carrier"]["id"]]
    assert spec["subject_type"] == "consignment" and spec["subject_id"] == consignment["id"]
    assert "KZDOS" in spec["message"]


def test_rules_are_data_customs_changes_and_switches_them(carriers, consignment):
    rules = {r["kind"]: r for r in service.list_rules(carriers.uow, carriers["trader"])}
    assert rules["late_arrival"]["params"] == {"hours": "12"} and rules["late_arrival"]["default"]
    service.save_rule(carriers.uow, carriers["customs_officer"], "late_arrival", {"hours": "2"})
    service.save_rule(carriers.uow, carriers["customs_officer"], "off_route", {}, active=False)
    capture(carriers, event(100, [WAGON], "CNAKU"), event(101, [WAGON], "KZDOS"))
    assert [a["kind"] for a in alerts(carriers)] == ["late_arrival"]
    with pytest.raises(Forbidden):
        service.save_rule(carriers.uow, carriers["carrier"], "late_arrival", {"hours": "1"})


@pytest.mark.parametrize("kind, params, path, code", [
    ("coffee_break", {}, "kind", "invalid_choice"),
    ("dwell_exceeded", {"hours": "0"}, "params.hours", "out_of_range"),
    ("dwell_exceeded", {"hours": "long"}, "params.hours", "not_a_number"),
    ("dwell_exceeded", {"days": "2"}, "params.days", "unknown_field"),
    ("temperature_excursion", {"min_c": "5", "max_c": "2"}, "params.max_c", "temperature_range_inverted"),
    ("temperature_excursion", {"tolerance_c": "-1"}, "params.tolerance_c", "out_of_range"),
])
def test_a_bad_rule_is_refused(carriers, kind, params, path, code):
    with pytest.raises(ValidationFailed) as refused:
        service.save_rule(carriers.uow, carriers["customs_officer"], kind, params)
    assert (refused.value.problems[0].path, refused.value.problems[0].code) == (path, code)


def test_the_rules_api(client, as_user, carriers):
    response = client.put("/api/v1/monitoring/rules/dwell_exceeded", json={"params": {"hours": "24"}},
                          headers=as_user("customs_officer"))
    assert response.status_code == 200 and response.json()["params"] == {"hours": "24"}
    listed = client.get("/api/v1/monitoring/rules", headers=as_user("carrier")).json()["items"]
    assert {r["kind"]: r["params"] for r in listed}["dwell_exceeded"] == {"hours": "24"}
    assert client.put("/api/v1/monitoring/rules/dwell_exceeded", json={"params": {}},
                      headers=as_user("carrier")).status_code == 403
    assert client.put("/api/v1/monitoring/rules/dwell_exceeded", json={"params": {}, "colour": 1},
                      headers=as_user("customs_officer")).status_code == 422


def test_an_event_on_equipment_of_no_consignment_is_stored_and_monitors_nothing(carriers, consignment):
    capture(carriers, event(0, ["urn:tradewindow:container:MSKU1234565"], "KZDOS"))
    assert alerts(carriers) == []


def test_a_consignment_of_another_trader_is_not_confused(carriers, consignment):
    service.register_consignment(carriers.uow, carriers["other_carrier"], train(trader=USCC["other_trader"]))
    capture(carriers, event(100, [WAGON], "KZDOS"))
    # The same wagon number on two consignments: both are told.
    assert len(alerts(carriers)) == 2
