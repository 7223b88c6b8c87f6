"""Reporting a consignment: legs, planned route, equipment and seals, checked in full; a repeat
returns the first result."""

from __future__ import annotations

import pytest

from tests.conftest import USCC
from tests.logistics.conftest import at, train
from tradewindow.logistics import service
from tradewindow.platform.errors import Conflict, Forbidden, ValidationFailed


def problems(world, body, actor="carrier") -> dict[str, str]:
    with pytest.raises(ValidationFailed) as refused:
        service.register_consignment(world.uow, world[actor], body)
    return {p.path: p.code for p in refused.value.problems}


def test_a_carrier_reports_a_train_with_its_route_equipment_and_seals(carriers):
    registered = service.register_consignment(carriers.uow, carriers["carrier"], train())
    c = registered.consignment
    assert registered.created and c["status"] == "planned"
    assert [s["location"] for s in c["route"]] == ["CNTNR", "CNAKU", "PLMAL", "DEDUI"]
    assert c["trader"]["uscc"] == USCC["trader"] and c["forwarder"]["uscc"] == USCC["carrier"]
    container = next(u for u in c["equipment"] if u["kind"] == "container")
    assert container["seal"] == {"number": "CN4471023", "kind": "elock", "status": "intact"}
    assert container["epc"] == "urn:tradewindow:container:CSQU3054383"
    assert c["eta"]["planned"].isoformat() == at(360)


def test_the_same_client_reference_returns_the_first_consignment(carriers):
    first = service.register_consignment(carriers.uow, carriers["carrier"], train())
    again = service.register_consignment(carriers.uow, carriers["carrier"], train(description="changed"))
    assert not again.created and again.consignment["id"] == first.consignment["id"]


def test_a_transport_document_is_reported_once_per_forwarder(carriers):
    service.register_consignment(carriers.uow, carriers["carrier"], train())
    with pytest.raises(Conflict) as refused:
        service.register_consignment(carriers.uow, carriers["carrier"], train("REF-2"))
    assert refused.value.code == "duplicate_transport_document"
    # Another forwarder may use the same number.
    assert service.register_consignment(carriers.uow, carriers["other_carrier"], train()).created


def test_a_multimodal_journey_joins_its_legs_and_names_each_carrier(carriers):
    body = train(legs=[
        {"mode": "rail", "route": [{"location": "CNTNR", "planned_departure": at(0)},
                                   {"location": "CNQZH", "planned_arrival": at(40)}]},
        {"mode": "sea", "carrier": USCC["spare"], "route": [{"location": "CNQZH", "planned_departure": at(50)},
                                                            {"location": "CNSHA", "planned_arrival": at(200)}]}],
        equipment=[{"kind": "container", "number": "CSQU3054383"}])
    c = service.register_consignment(carriers.uow, carriers["carrier"], body).consignment
    assert [s["location"] for s in c["route"]] == ["CNTNR", "CNQZH", "CNSHA"]
    assert c["route"][1]["planned_arrival"].isoformat() == at(40)
    assert c["route"][1]["planned_departure"].isoformat() == at(50)
    assert [leg["carrier"]["uscc"] for leg in c["legs"]] == [USCC["carrier"], USCC["spare"]]


def test_only_carriers_report_consignments(carriers):
    with pytest.raises(Forbidden):
        service.register_consignment(carriers.uow, carriers["trader"], train())


def test_every_problem_of_a_consignment_is_reported_at_once(carriers):
    found = problems(carriers, {
        "transport_document": "x" * 65, "trader": "91500000000000000X", "colour": "red",
        "legs": [{"mode": "hovercraft", "carrier": USCC["trader"], "route": [{"location": "CNTNR"}]}],
        "equipment": [{"kind": "container", "number": "CSQU3054384"}, {"kind": "spaceship", "number": "X"}],
        "temperature": {"min": "5", "max": "warm"},
    })
    assert found == {
        "client_reference": "required", "transport_document": "too_long", "trader": "unknown_enterprise",
        "colour": "unknown_field", "legs[0].mode": "invalid_choice", "legs[0].carrier": "not_a_carrier",
        "legs[0].route": "route_too_short", "equipment[0].number": "invalid_container_number",
        "equipment[1].kind": "invalid_choice", "temperature.max": "not_a_number",
    }


def test_route_problems(carriers):
    found = problems(carriers, train(legs=[
        {"mode": "rail", "route": [{"location": "CNTNR", "planned_departure": "2026-03-01T08:00:00"},
                                   {"location": "CN-AKU"}, {"location": "XXZZZ"},
                                   {"location": "PLMAL", "planned_arrival": at(10), "planned_departure": at(5)}]},
        {"mode": "road", "route": [{"location": "DEDUI"}, {"location": "CNSHA", "planned_arrival": at(1)}]},
        {"mode": "rail", "route": [{"location": "CNSHA", "planned_arrival": "tomorrow"}, {"location": "CNCKG"}]},
    ]))
    assert found == {
        "legs[0].route[0].planned_departure": "invalid_datetime",
        "legs[0].route[1].location": "invalid_locode",
        "legs[0].route[2].location": "unknown_location",
        "legs[0].route[3].planned_departure": "departure_before_arrival",
        "legs[2].route[0].planned_arrival": "invalid_datetime",
    }
    found = problems(carriers, train(legs=[
        {"mode": "rail", "route": [{"location": "CNTNR"}, {"location": "CNAKU"}]},
        {"mode": "rail", "route": [{"location": "KZDOS"}, {"location": "PLMAL"}]}],
        equipment=[]))
    assert found == {"legs[1].route[0].location": "legs_not_connected"}
    found = problems(carriers, train(legs=[
        {"mode": "rail", "route": [{"location": "CNTNR", "planned_departure": at(10)},
                                   {"location": "CNAKU", "planned_arrival": at(5)}]}], equipment=[]))
    assert found == {"legs[0].route[1].planned_arrival": "planned_times_out_of_order"}


def test_equipment_problems(carriers):
    found = problems(carriers, train(legs=[{"mode": "sea", "route": [{"location": "CNQZH"}, {"location": "CNSHA"}]}],
                                     equipment=[
        {"kind": "container", "number": "CSQU3054383", "carried_on": "CSQU3054383"},
        {"kind": "container", "number": "csqu 305438 3"},
        {"kind": "wagon", "number": "C701234567", "seals": [{"number": "S!"}]},
        {"kind": "wagon", "number": "123456789012"},
        {"kind": "barge", "number": "?"},
        {"kind": "flight", "number": "1234", "seals": [{"number": "CN12345"}]},
        {"kind": "container", "number": "MSKU1234565", "carried_on": "NOPE1"},
        {"kind": "container", "number": "TGHU7654321", "seals": [{"number": "CN12345", "kind": "padlock"}]},
    ]))
    assert found == {
        "equipment[0].carried_on": "invalid_carriage",     # a container rides on a wagon, barge or flight
        "equipment[1].number": "duplicate_equipment",
        "equipment[2].seals[0].number": "invalid_seal_number",
        "equipment[2].kind": "equipment_mode_mismatch",
        "equipment[3].number": "invalid_wagon_number",
        "equipment[4].number": "invalid_barge_number",
        "equipment[5].number": "invalid_flight_number",
        "equipment[6].carried_on": "unknown_carriage",
        "equipment[7].number": "invalid_container_number",
        "equipment[7].seals[0].kind": "invalid_choice",
    }


def test_seals_belong_on_containers_and_wagons(carriers):
    air = [{"mode": "air", "route": [{"location": "CNCKG"}, {"location": "CNSHA"}]}]
    found = problems(carriers, train(legs=air, equipment=[
        {"kind": "flight", "number": "CA1234", "seals": [{"number": "CN12345"}]},
        {"kind": "container", "number": "CSQU3054383", "carried_on": "CA1234"}]))
    assert found == {"equipment[0].seals": "seal_not_allowed"}


def test_temperature_range(carriers):
    assert problems(carriers, train(temperature={"min": "8", "max": "2"})) == {
        "temperature.max": "temperature_range_inverted"}
    reefer = service.register_consignment(carriers.uow, carriers["carrier"],
                                          train(temperature={"min": "-25", "max": "-18"}))
    assert reefer.consignment["temperature"] == {"min": "-25", "max": "-18"}


@pytest.mark.parametrize("body, code", [
    ([], "not_an_object"),
    ({"client_reference": "R", "transport_document": "D", "trader": USCC["trader"], "legs": []}, "empty"),
    ({"client_reference": "R", "transport_document": "D", "trader": USCC["trader"], "legs": "rail"}, "not_a_list"),
    ({"client_reference": 7, "transport_document": "D", "trader": USCC["trader"], "legs": [1]}, "not_a_string"),
])
def test_shapes_that_are_not_a_consignment(carriers, body, code):
    with pytest.raises(ValidationFailed) as refused:
        service.register_consignment(carriers.uow, carriers["carrier"], body)
    assert code in {p.code for p in refused.value.problems}


def test_the_api_answers_201_then_200_and_422_with_every_problem(client, as_user, carriers):
    headers = as_user("carrier")
    first = client.post("/api/v1/consignments", json=train(), headers=headers)
    assert first.status_code == 201
    again = client.post("/api/v1/consignments", json=train(), headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    bad = client.post("/api/v1/consignments", json=train("R2", legs=[]), headers=headers)
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{"path": "legs", "code": "empty", "message": "legs must not be empty."}]
    assert client.post("/api/v1/consignments", json=train("R3"), headers=as_user("trader")).status_code == 403
