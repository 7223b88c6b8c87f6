"""GET /api/v1/epcis/events: the standard's simple filters and paging by nextPageToken."""

from __future__ import annotations

import pytest

from tests.logistics.conftest import CONTAINER, WAGON, document, event


@pytest.fixture
def captured(client, as_user, carriers, epcis_schema):
    agg = {"type": "AggregationEvent", "eventTime": "2026-03-01T05:00:00Z", "eventTimeZoneOffset": "+00:00",
           "parentID": WAGON, "childEPCs": [CONTAINER], "action": "ADD"}
    doc = document(
        event(0, [WAGON], "CNTNR", bizStep="departing", disposition="in_transit"),
        event(1, [CONTAINER], "CNTNR", bizStep="loading", readPoint={"id": "urn:epc:id:sgln:4012345.00001.0"}),
        agg,
        event(10, ["urn:epc:id:sgtin:4012345.011111.7"], "CNAKU", bizStep="arriving", disposition="in_progress"),
        event(20, ["urn:epc:id:sgtin:4012345.022222.1"], "CNAKU", bizStep="https://ref.gs1.org/cbv/BizStep-arriving"),
    )
    response = client.post("/api/v1/epcis/capture", json=doc, headers=as_user("carrier"))
    assert response.status_code == 201
    return response.json()["event_ids"]


def query(client, as_user, **params):
    response = client.get("/api/v1/epcis/events", params=params, headers=as_user("customs_officer"))
    assert response.status_code == 200, response.text
    body = response.json()
    return [e["eventID"] for e in body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]], body


@pytest.mark.parametrize("params, expected", [
    ({}, [0, 1, 2, 3, 4]),
    ({"eventType": "AggregationEvent"}, [2]),
    ({"eventType": "ObjectEvent,AggregationEvent"}, [0, 1, 2, 3, 4]),
    ({"GE_eventTime": "2026-03-01T01:00:00Z"}, [1, 2, 3, 4]),
    ({"LT_eventTime": "2026-03-01T10:00:00Z"}, [0, 1, 2]),
    ({"GE_eventTime": "2026-03-01T09:00:00+01:00", "LT_eventTime": "2026-03-01T20:00:00Z"}, [3]),
    ({"EQ_bizStep": "arriving"}, [3, 4]),
    ({"EQ_bizStep": "urn:epcglobal:cbv:bizstep:departing"}, [0]),
    ({"EQ_bizStep": ["loading", "departing"]}, [0, 1]),
    ({"EQ_disposition": "in_transit"}, [0]),
    ({"MATCH_epc": CONTAINER}, [1, 2]),
    ({"MATCH_epc": "urn:epc:idpat:sgtin:4012345.*"}, [3, 4]),
    ({"MATCH_parentID": WAGON}, [2]),
    ({"MATCH_anyEPC": WAGON}, [0, 2]),
    ({"EQ_bizLocation": "urn:tradewindow:location:CNAKU"}, [3, 4]),
    ({"EQ_readPoint": "urn:epc:id:sgln:4012345.00001.0"}, [1]),
])
def test_filters(client, as_user, captured, params, expected):
    ids, _ = query(client, as_user, **params)
    assert ids == [captured[i] for i in expected]


def test_paging_walks_every_event_once_with_next_page_tokens(client, as_user, captured):
    seen, token, pages = [], None, 0
    while True:
        params = {"perPage": 2, **({"nextPageToken": token} if token else {})}
        ids, body = query(client, as_user, **params)
        seen += ids
        pages += 1
        token = body.get("nextPageToken")
        if token is None:
            break
    assert seen == captured and pages == 3


def test_the_next_page_is_also_a_link_header(client, as_user, captured):
    response = client.get("/api/v1/epcis/events", params={"perPage": 4}, headers=as_user("customs_officer"))
    assert response.headers["link"].startswith("<?nextPageToken=")
    assert 'rel="next"' in response.headers["link"]


@pytest.mark.parametrize("params, path, code", [
    ({"nextPageToken": "garbage"}, "nextPageToken", "invalid_page_token"),
    ({"GE_eventTime": "last week"}, "query.GE_eventTime", "invalid_datetime"),
    ({"perPage": 0}, "query.perPage", "out_of_range"),
])
def test_bad_parameters_are_refused(client, as_user, captured, params, path, code):
    response = client.get("/api/v1/epcis/events", params=params, headers=as_user("customs_officer"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == path
    assert response.json()["errors"][0]["code"] == code


def test_the_answer_is_a_query_document_the_schema_accepts(client, as_user, captured, epcis_schema):
    import json

    import jsonschema

    _, body = query(client, as_user)
    body.pop("nextPageToken", None)
    schema = json.loads(epcis_schema.read_text(encoding="utf-8"))
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(body))


@pytest.mark.parametrize("odd", ["urn:example:a,b", "urn:example:{x}", 'urn:example:q"uote\\d', "NULL", "urn:x: y"])
def test_an_epc_with_characters_special_to_arrays_is_stored_and_matched_as_sent(client, as_user, carriers,
                                                                                epcis_schema, odd):
    # The EPCs of an event are one list on its row (a PostgreSQL array, written by COPY). A comma
    # separates values in the query parameters: an EPC with one is asked for by a pattern.
    doc = document(event(0, [odd, "urn:example:plain"], "CNTNR"),
                   {"type": "AggregationEvent", "eventTime": "2026-03-01T05:00:00Z", "eventTimeZoneOffset": "+00:00",
                    "parentID": "urn:example:bag", "childEPCs": [odd], "action": "ADD"})
    response = client.post("/api/v1/epcis/capture", json=doc, headers=as_user("carrier"))
    assert response.status_code == 201, response.text
    found, body = query(client, as_user, MATCH_epc=odd if "," not in odd else odd.split(",")[0] + "*")
    assert found == response.json()["event_ids"]
    assert body["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["epcList"] == [odd, "urn:example:plain"]
    assert query(client, as_user, MATCH_epc=odd.split(",")[0][:-1] + "*")[0] == found
    assert query(client, as_user, MATCH_anyEPC="urn:example:bag")[0] == found[1:]
