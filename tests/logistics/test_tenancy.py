"""Who sees what, endpoint by endpoint: a consignment's parties (trader, its authorised broker,
forwarder, carriers) and officers; nobody else."""

from __future__ import annotations

import pytest

from tests.logistics.conftest import WAGON, document, event, train


@pytest.fixture
def shipped(client, as_user, carriers, epcis_schema, authorised_broker):
    consignment = client.post("/api/v1/consignments", json=train(), headers=as_user("carrier")).json()
    client.post("/api/v1/epcis/capture", json=document(event(100, [WAGON], "KZDOS")), headers=as_user("carrier"))
    # An event of the other carrier about nothing of ours.
    client.post("/api/v1/epcis/capture", json=document(event(5, ["urn:epc:id:sgtin:1.2.3"])),
                headers=as_user("other_carrier"))
    return consignment


SEES = ["trader", "broker", "carrier", "customs_officer", "quarantine_officer", "zone", "admin"]
DOES_NOT_SEE = ["other_trader", "other_carrier", "logistics"]


@pytest.mark.parametrize("persona", SEES + DOES_NOT_SEE)
def test_consignment_list_detail_and_timelines(client, as_user, shipped, persona):
    headers = as_user(persona)
    listed = client.get("/api/v1/consignments", headers=headers).json()["items"]
    detail = client.get(f"/api/v1/consignments/{shipped['id']}", headers=headers)
    timeline = client.get(f"/api/v1/consignments/{shipped['id']}/timeline", headers=headers)
    container = client.get("/api/v1/equipment/CSQU3054383/timeline", headers=headers)
    alerts = client.get("/api/v1/monitoring/alerts", headers=headers).json()["items"]
    if persona in SEES:
        assert [c["id"] for c in listed] == [shipped["id"]]
        assert detail.status_code == timeline.status_code == container.status_code == 200
        assert container.json()["equipment"][0]["number"] == "CSQU3054383"
        assert [a["kind"] for a in alerts] == ["off_route"]
    else:
        assert listed == [] and alerts == []
        assert detail.status_code == timeline.status_code == container.status_code == 404


def test_banks_do_not_follow_consignments(client, as_user, shipped):
    assert client.get("/api/v1/consignments", headers=as_user("bank")).status_code == 403
    assert client.get("/api/v1/monitoring/alerts", headers=as_user("bank")).status_code == 403


@pytest.mark.parametrize("persona, sees", [
    ("customs_officer", 2), ("carrier", 1), ("trader", 1), ("broker", 1), ("other_carrier", 1),
    ("other_trader", 0), ("bank", 0),
])
def test_event_query_shows_what_you_captured_or_what_concerns_your_goods(client, as_user, shipped, persona, sees):
    response = client.get("/api/v1/epcis/events", headers=as_user(persona))
    assert response.status_code == 200
    assert len(response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]) == sees


@pytest.mark.parametrize("persona, status", [
    ("carrier", 201), ("logistics", 201), ("trader", 201), ("customs_officer", 201), ("admin", 201),
    ("broker", 403), ("bank", 403), ("zone", 403), ("quarantine_officer", 403),
])
def test_who_may_capture(client, as_user, carriers, epcis_schema, persona, status):
    response = client.post("/api/v1/epcis/capture", json=document(event(1, [f"urn:x:{persona}"])),
                           headers=as_user(persona))
    assert response.status_code == status


@pytest.mark.parametrize("persona, status", [
    ("carrier", 201), ("other_carrier", 201), ("trader", 403), ("broker", 403), ("logistics", 403),
    ("customs_officer", 403), ("admin", 403),
])
def test_who_may_report_a_consignment(client, as_user, carriers, persona, status):
    assert client.post("/api/v1/consignments", json=train(), headers=as_user(persona)).status_code == status


def test_nothing_without_credentials(client, carriers):
    for method, url in (("get", "/api/v1/consignments"), ("get", "/api/v1/epcis/events"),
                        ("post", "/api/v1/epcis/capture"), ("get", "/api/v1/monitoring/rules")):
        assert getattr(client, method)(url).status_code == 401
