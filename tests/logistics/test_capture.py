"""EPCIS capture: idempotent by eventID (or by the event's hash where it has none), refused whole
when anything is wrong, and only with the schema configured."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.logistics.conftest import CONTAINER, WAGON, document, event, train
from tradewindow.logistics import model, service
from tradewindow.logistics.tables import containment
from tradewindow.platform.errors import Forbidden, Problems, ValidationFailed


def test_capturing_the_same_document_twice_stores_each_event_once(carriers, epcis_schema):
    doc = document(event(0, [WAGON], "CNTNR"), event(1, [CONTAINER], "CNTNR", eventID="urn:uuid:1"))
    first = service.capture(carriers.uow, carriers["carrier"], doc)
    again = service.capture(carriers.uow, carriers["carrier"], doc)
    assert (first["captured"], first["repeated"]) == (2, 0)
    assert (again["captured"], again["repeated"]) == (0, 2)
    assert again["event_ids"] == first["event_ids"]
    assert first["event_ids"][1] == "urn:uuid:1"
    assert first["event_ids"][0].startswith("ni:///sha-256;")
    found = service.query_events(carriers.uow, carriers["customs_officer"], service.EventQuery())
    assert len(found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]) == 2


def test_an_event_repeated_within_one_document_is_stored_once(carriers, epcis_schema):
    result = service.capture(carriers.uow, carriers["carrier"], document(event(0, [WAGON]), event(0, [WAGON])))
    assert (result["captured"], result["repeated"]) == (1, 1)


def test_the_hash_ignores_order_of_lists_time_zone_spelling_and_record_time():
    one = event(0, ["urn:a", "urn:b"], "CNTNR", bizStep="departing")
    other = event(0, ["urn:b", "urn:a"], "CNTNR", bizStep="urn:epcglobal:cbv:bizstep:departing",
                  recordTime="2030-01-01T00:00:00Z")
    other["eventTime"] = "2026-03-01T08:00:00.000+08:00"
    assert model.event_hash(one) == model.event_hash(other)
    assert model.event_hash(one) != model.event_hash(event(0, ["urn:a"], "CNTNR", bizStep="departing"))
    assert model.event_hash(one) != model.event_hash({**one, "example:note": "x"})


def test_events_the_schema_accepts_but_we_cannot_read_are_refused_whole(carriers, epcis_schema):
    bad_time = event(0, [WAGON])
    bad_time["eventTime"] = "yesterday"
    bad_seal = event(1, [CONTAINER], **{"tw:seal": {"number": "!", "status": "cracked"}})
    with pytest.raises(ValidationFailed) as refused:
        service.capture(carriers.uow, carriers["carrier"], document(event(0, [WAGON], "CNTNR"), bad_time, bad_seal))
    assert {(p.path, p.code) for p in refused.value.problems} == {
        ("epcisBody.eventList[1].eventTime", "invalid_event_time"),
        ("epcisBody.eventList[2].tw:seal", "invalid_seal")}
    found = service.query_events(carriers.uow, carriers["customs_officer"], service.EventQuery())
    assert found["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []


def test_a_single_event_with_its_context_is_a_document_too(carriers, epcis_schema):
    single = {"@context": "https://ref.gs1.org/standards/epcis/epcis-context.jsonld", **event(0, [WAGON])}
    assert service.capture(carriers.uow, carriers["carrier"], single)["captured"] == 1


def test_without_a_configured_schema_capture_refuses_with_503(client, as_user, carriers, monkeypatch):
    monkeypatch.delenv("TRADEWINDOW_EPCIS_SCHEMA", raising=False)
    response = client.post("/api/v1/epcis/capture", json=document(event(0, [WAGON])), headers=as_user("carrier"))
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "epcis_schema_not_configured"


def test_the_api_answers_201_for_new_events_200_for_repeats_and_422_for_bad_json(client, as_user, carriers,
                                                                                    epcis_schema):
    headers = as_user("carrier")
    doc = document(event(0, [WAGON]))
    assert client.post("/api/v1/epcis/capture", json=doc, headers=headers).status_code == 201
    assert client.post("/api/v1/epcis/capture", json=doc, headers=headers).status_code == 200
    response = client.post("/api/v1/epcis/capture", content=b"{not json",
                           headers={**headers, "content-type": "application/ld+json"})
    assert response.status_code == 422 and response.json()["errors"][0]["code"] == "malformed_json"
    response = client.post("/api/v1/epcis/capture", json=[1, 2], headers=headers)
    assert response.status_code == 422 and response.json()["errors"][0]["code"] == "not_an_object"
    response = client.post("/api/v1/epcis/capture", json={"type": "EPCISDocument"}, headers=headers)
    assert response.status_code == 422
    assert {e["code"] for e in response.json()["errors"]} == {"schema_violation"}


def test_json_ld_content_type_is_accepted(client, as_user, carriers, epcis_schema):
    import json

    response = client.post("/api/v1/epcis/capture", content=json.dumps(document(event(0, [WAGON]))),
                           headers={**as_user("carrier"), "content-type": "application/ld+json"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("persona", ["bank", "broker", "quarantine_officer", "zone"])
def test_only_parties_that_see_goods_move_capture(carriers, epcis_schema, persona):
    with pytest.raises(Forbidden):
        service.capture(carriers.uow, carriers[persona], document(event(0, [WAGON])))


def test_aggregation_events_keep_what_is_packed_in_what(carriers, epcis_schema):
    parcel, bag = "urn:epc:id:sgtin:4012345.011111.1", "urn:epc:id:sscc:4012345.0000000001"
    agg = {"type": "AggregationEvent", "eventTimeZoneOffset": "+00:00"}
    service.capture(carriers.uow, carriers["carrier"], document(
        {**agg, "eventTime": "2026-03-01T00:00:00Z", "parentID": bag, "childEPCs": [parcel], "action": "ADD"},
        {**agg, "eventTime": "2026-03-01T01:00:00Z", "parentID": CONTAINER, "childEPCs": [bag], "action": "ADD"},
        {**agg, "eventTime": "2026-03-01T02:00:00Z", "parentID": WAGON, "childEPCs": [CONTAINER], "action": "ADD"},
        {**agg, "eventTime": "2026-03-02T00:00:00Z", "parentID": WAGON, "action": "DELETE"}))
    with carriers.uow.read():
        inside = service._contents(carriers.uow, {WAGON}, model.parse_instant("2026-03-01T12:00:00Z"))
        later = service._contents(carriers.uow, {WAGON}, model.parse_instant("2026-03-03T00:00:00Z"))
        before = service._contents(carriers.uow, {WAGON}, model.parse_instant("2026-03-01T01:30:00Z"))
    assert inside == {CONTAINER, bag, parcel}
    assert later == set()
    assert before == set()


def test_event_facts_read_temperatures_in_any_unit():
    problems = Problems()
    facts = model.event_facts(event(0, [CONTAINER], sensorElementList=[{"sensorReport": [
        {"type": "Temperature", "value": 50, "uom": "FAH"}, {"type": "gs1:Temperature", "value": 263.15, "uom": "KEL"},
        {"type": "Humidity", "value": 80}]}]), "", problems)
    assert not problems and facts is not None
    assert [str(v) for _, v in facts.temperatures] == ["10.00", "-10.00"]


def test_equipment_packed_before_its_consignment_is_reported_is_followed_inside_what_holds_it(carriers,
                                                                                              epcis_schema):
    flatrack, bag = "urn:epc:id:sscc:4012345.0000000099", "urn:epc:id:sscc:4012345.0000000001"
    agg = {"type": "AggregationEvent", "eventTimeZoneOffset": "+00:00", "action": "ADD"}
    service.capture(carriers.uow, carriers["carrier"], document(
        {**agg, "eventTime": "2026-03-01T00:00:00Z", "parentID": flatrack, "childEPCs": [bag, CONTAINER]},
        {**agg, "eventTime": "2026-03-01T00:30:00Z", "parentID": bag, "childEPCs": ["urn:epc:id:sgtin:1.2.3"]},
        {**agg, "eventTime": "2026-03-01T01:00:00Z", "parentID": flatrack, "childEPCs": [bag], "action": "DELETE"}))

    def marks() -> dict[tuple[str, ...], bool]:
        with carriers.uow.read() as conn:
            return {tuple(r.children): r.holds_equipment for r in conn.execute(select(containment))}

    assert marks() == {(CONTAINER,): False, (bag,): False, ("urn:epc:id:sgtin:1.2.3",): False}
    service.register_consignment(carriers.uow, carriers["carrier"], train())
    assert marks() == {(CONTAINER,): True, (bag,): False, ("urn:epc:id:sgtin:1.2.3",): False}
    service.capture(carriers.uow, carriers["carrier"], document(
        event(3, [flatrack], "CNTNR", eventID="urn:uuid:moved", bizStep="departing"),
        {**agg, "eventTime": "2026-03-01T04:00:00Z", "parentID": flatrack, "childEPCs": [CONTAINER],
         "action": "DELETE"},
        event(5, [flatrack], "CNTNR", eventID="urn:uuid:after")))
    found = service.container_timeline(carriers.uow, carriers["customs_officer"], "CSQU3054383")
    assert "urn:uuid:moved" in [e["event_id"] for e in found["events"]]
    assert "urn:uuid:after" not in [e["event_id"] for e in found["events"]]
    assert marks() == {(CONTAINER,): True, (bag,): False, ("urn:epc:id:sgtin:1.2.3",): False}
