"""The EPCIS 2.0 JSON Schema is the contract of capture: every example document of the standard
that the schema accepts (42) is captured, and the 4 it refuses are refused with the schema's errors
(DESIGN.md §4.5; ../shared/data/README.md)."""

from __future__ import annotations

import json

import pytest

from tests.support.reference import require_reference

EXAMPLES = "epcis/JSON-simple-context"
REFUSED = {
    "Example-TransactionEvents-2020_07_03y.jsonld": {"epcisBody.eventList[1].sourceList",
                                                     "epcisBody.eventList[1].destinationList"},
    "WithFullCombinationOfFields/object_event_all_possible_fields.jsonld": {"epcisBody.eventList[0]"},
    "WithSensorData/SensorDataExample12.jsonld": {""},
    "WithSensorData/SensorDataExample17.jsonld": {"schemaVersion"},
}


def examples() -> dict[str, dict]:
    folder = require_reference(EXAMPLES)
    return {str(p.relative_to(folder)): json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(folder.rglob("*.jsonld"))}


def test_every_example_the_schema_accepts_is_captured_and_the_four_it_refuses_are_refused(
        client, as_user, carriers, epcis_schema):
    documents = examples()
    assert len(documents) == 46
    captured, refused = [], {}
    for name, document in documents.items():
        response = client.post("/api/v1/epcis/capture", json=document, headers=as_user("carrier"))
        if response.status_code in (200, 201):
            assert response.json()["events"] >= 1, name
            captured.append(name)
        else:
            assert response.status_code == 422, (name, response.text)
            refused[name] = response.json()["errors"]
    assert len(captured) == 42
    assert set(refused) == set(REFUSED)
    for name, errors in refused.items():
        assert {e["code"] for e in errors} == {"schema_violation"}, name
        assert {e["path"] for e in errors} == REFUSED[name], name
        assert all(e["message"] for e in errors)


def test_a_refused_document_stores_nothing(client, as_user, carriers, epcis_schema):
    document = examples()["WithSensorData/SensorDataExample12.jsonld"]
    response = client.post("/api/v1/epcis/capture", json=document, headers=as_user("carrier"))
    assert response.status_code == 422
    assert {e["message"] for e in response.json()["errors"]} == {
        '"schemaVersion" is a required property', '"creationDate" is a required property'}
    events = client.get("/api/v1/epcis/events", headers=as_user("customs_officer")).json()
    assert events["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []


@pytest.mark.parametrize("name", ["WithSensorData/SensorDataExample1.jsonld",
                                  "WithFullCombinationOfFields/aggregation_event_all_possible_fields.jsonld",
                                  "WithErrorDeclaration/ErrorDeclarationAndCorrectiveEvent.jsonld",
                                  "Example_9.6.1-ObjectEvent.jsonld"])
def test_captured_events_come_back_whole_with_their_extension_fields(name, client, as_user, carriers, epcis_schema):
    document = examples()[name]
    response = client.post("/api/v1/epcis/capture", json=document, headers=as_user("carrier"))
    assert response.status_code == 201, response.text
    ids = response.json()["event_ids"]
    found = client.get("/api/v1/epcis/events", params={"perPage": 1000}, headers=as_user("carrier")).json()
    returned = {e["eventID"]: e for e in found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]}
    for event, event_id in zip(document["epcisBody"]["eventList"], ids, strict=True):
        back = dict(returned[event_id])
        back.pop("recordTime")
        if "eventID" not in event:
            back.pop("eventID")
        assert back == {k: v for k, v in event.items() if k != "recordTime"}
