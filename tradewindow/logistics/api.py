"""Logistics API: consignments and their timelines, EPCIS 2.0 capture and query, monitoring rules
and alerts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import Field

from tradewindow.logistics import model, service
from tradewindow.platform.auth import ALL_ROLES, Actor, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import Problems
from tradewindow.platform.web import Schema, allow, get_uow

router = APIRouter(prefix="/api/v1", tags=["logistics"])
Uow = Annotated[UnitOfWork, Depends(get_uow)]
Anyone = Annotated[Actor, allow(*ALL_ROLES)]
Carrier = Annotated[Actor, allow(*service.REPORTERS)]
Capturer = Annotated[Actor, allow(*service.CAPTURERS)]
RuleKeeper = Annotated[Actor, allow(*service.RULE_KEEPERS)]
Reader = Annotated[Actor, allow(Role.TRADER, Role.BROKER, Role.CARRIER, Role.LOGISTICS, Role.CUSTOMS,
                                Role.QUARANTINE, Role.LICENSING, Role.ZONE, Role.ADMIN)]

EXAMPLE = {
    "client_reference": "CQ-DUI-2026-0042", "transport_document": "CIM-CQ-DE-2026-0042",
    "trader": "91500115GG37HDHFEA", "description": "Laptops, 2 x 40' containers",
    "legs": [{"mode": "rail", "route": [
        {"location": "CNTNR", "planned_departure": "2026-03-01T08:00:00+08:00"},
        {"location": "CNAKU", "planned_arrival": "2026-03-05T08:00:00+08:00"},
        {"location": "PLMAL", "planned_arrival": "2026-03-13T08:00:00+01:00"},
        {"location": "DEDUI", "planned_arrival": "2026-03-16T08:00:00+01:00"}]}],
    "equipment": [{"kind": "wagon", "number": "C701234567"},
                  {"kind": "container", "number": "CSQU3054383", "carried_on": "C701234567",
                   "seals": [{"number": "CN4471023", "kind": "elock"}]}],
}
CAPTURE_EXAMPLE = {
    "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
                 {"tw": "urn:tradewindow:epcis:"}],
    "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-03-01T08:05:00+08:00",
    "epcisBody": {"eventList": [{
        "type": "ObjectEvent", "eventTime": "2026-03-01T08:00:00.000+08:00", "eventTimeZoneOffset": "+08:00",
        "epcList": ["urn:tradewindow:wagon:C701234567"], "action": "OBSERVE", "bizStep": "departing",
        "disposition": "in_transit", "bizLocation": {"id": "urn:tradewindow:location:CNTNR"},
        "tw:seal": {"number": "CN4471023", "kind": "elock", "status": "intact"}}]},
}


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(jsonable_encoder(value), status_code=status, headers=headers)


# --- consignments ---------------------------------------------------------------------------------

@router.post("/consignments", status_code=201,
             responses={200: {"description": "A repeat of a client reference: the first result."}})
def report_consignment(uow: Uow, actor: Carrier,
                       body: Annotated[Any, Body(openapi_examples={"train": {"value": EXAMPLE}})]) -> Any:
    """Report a consignment: trader (credit code), legs with mode, carrier (credit code; yours by
    default) and planned route of UN/LOCODEs with planned times, equipment (ISO 6346 containers,
    wagons, barges, flights) and seals. 201 with the consignment; 200 with the first result when the
    client reference was used before; 422 with every problem. Roles: carrier."""
    registered = service.register_consignment(uow, actor, body)
    return _json(registered.consignment, 201 if registered.created else 200)


@router.get("/consignments")
def list_consignments(uow: Uow, actor: Reader, status: str | None = None,
                      q: str | None = Query(None, max_length=64, description="transport document or equipment number"),
                      limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)) -> Any:
    """Consignments the caller may see, newest first. Roles: parties (trader, broker, carriers), officers."""
    return _json(service.list_consignments(uow, actor, status, q, limit, offset))


@router.get("/consignments/{consignment_id}")
def get_consignment(consignment_id: str, uow: Uow, actor: Reader) -> Any:
    """One consignment with its route (planned and actual), equipment, seals and ETA. Roles: as for the list."""
    return _json(service.get_consignment(uow, actor, consignment_id))


@router.get("/consignments/{consignment_id}/timeline")
def consignment_timeline(consignment_id: str, uow: Uow, actor: Reader) -> Any:
    """Every event of the consignment's equipment in time order, where it is now, its seals and
    their history, the ETA against the plan, and the alerts. Roles: as for the list."""
    return _json(service.timeline(uow, actor, consignment_id))


@router.get("/equipment/{number}/timeline")
def equipment_timeline(number: str, uow: Uow, actor: Reader) -> Any:
    """The timeline of a container (or wagon, barge, flight) on its latest consignment you may see.
    Roles: as for the list."""
    return _json(service.container_timeline(uow, actor, number))


# --- EPCIS ----------------------------------------------------------------------------------------

@router.post("/epcis/capture", status_code=201, tags=["epcis"])
def capture(uow: Uow, actor: Capturer,
            body: Annotated[Any, Body(media_type="application/ld+json",
                                      openapi_examples={"departure": {"value": CAPTURE_EXAMPLE}})]) -> Any:
    """Capture an EPCIS 2.0 JSON-LD document (EPCISDocument, or one event with its @context). The
    GS1 EPCIS JSON Schema is the contract: a document it refuses is answered 422 with each of the
    schema's errors (path, code `schema_violation`, message) and nothing is stored. Events are kept
    whole, extension fields included. Capture is idempotent by eventID (an event without one is
    named by its hash): 201 when something new was stored, 200 when every event was a repeat.
    Roles: carrier, logistics, trader, customs, admin."""
    result = service.capture(uow, actor, body)
    return _json(result, 201 if result["captured"] else 200)


def _list(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


@router.get("/epcis/events", tags=["epcis"])
def query_events(
    uow: Uow, actor: Anyone, response: Response,
    event_type: Annotated[list[str] | None, Query(alias="eventType")] = None,
    ge_event_time: Annotated[str | None, Query(alias="GE_eventTime")] = None,
    lt_event_time: Annotated[str | None, Query(alias="LT_eventTime")] = None,
    eq_biz_step: Annotated[list[str] | None, Query(alias="EQ_bizStep")] = None,
    eq_disposition: Annotated[list[str] | None, Query(alias="EQ_disposition")] = None,
    match_epc: Annotated[list[str] | None, Query(alias="MATCH_epc")] = None,
    match_parent_id: Annotated[list[str] | None, Query(alias="MATCH_parentID")] = None,
    match_any_epc: Annotated[list[str] | None, Query(alias="MATCH_anyEPC")] = None,
    eq_biz_location: Annotated[list[str] | None, Query(alias="EQ_bizLocation")] = None,
    eq_read_point: Annotated[list[str] | None, Query(alias="EQ_readPoint")] = None,
    per_page: Annotated[int, Query(alias="perPage", ge=1, le=1000)] = 30,
    next_page_token: Annotated[str | None, Query(alias="nextPageToken", max_length=500)] = None,
) -> Any:
    """Events you may see, in event-time order, as an EPCISQueryDocument: the standard's simple
    filters (a list parameter takes repeated values or a comma-separated list; MATCH_ values may end
    in `*`). A page that is not the last carries `nextPageToken` (also as a Link header): send it
    back with the same filters for the next. Roles: any (captured by you, about your consignments,
    or all for officers)."""
    problems = Problems()
    times = {}
    for name, value in (("GE_eventTime", ge_event_time), ("LT_eventTime", lt_event_time)):
        if value is not None:
            times[name] = model.parse_instant(value)
            if times[name] is None:
                problems.add(f"query.{name}", "invalid_datetime",
                             f"{name} is a date and time with its UTC offset, like 2026-03-01T00:00:00Z.")
    problems.raise_if_any()
    query = service.EventQuery(
        event_types=_list(event_type), ge_event_time=times.get("GE_eventTime"),
        lt_event_time=times.get("LT_eventTime"), biz_steps=_list(eq_biz_step),
        dispositions=_list(eq_disposition), match_epc=_list(match_epc), match_parent=_list(match_parent_id),
        match_any_epc=_list(match_any_epc), biz_locations=_list(eq_biz_location),
        read_points=_list(eq_read_point), per_page=per_page, page_token=next_page_token)
    document = service.query_events(uow, actor, query)
    headers = {}
    if token := document.get("nextPageToken"):
        headers["Link"] = f'<?nextPageToken={token}>; rel="next"'
    return _json(document, headers=headers)


# --- monitoring -----------------------------------------------------------------------------------

class RuleBody(Schema):
    params: dict[str, Any] = Field(default_factory=dict)
    active: bool = True


@router.get("/monitoring/rules")
def list_rules(uow: Uow, actor: Reader) -> Any:
    """The monitoring rules in force: seal broken, seal changed, dwell, off route, late arrival,
    temperature excursion, with their parameters. Roles: as for consignments."""
    return _json({"items": service.list_rules(uow, actor)})


@router.put("/monitoring/rules/{kind}")
def save_rule(kind: str, body: RuleBody, uow: Uow, actor: RuleKeeper) -> Any:
    """Set a rule's parameters (hours for dwell_exceeded and late_arrival; tolerance_c, min_c, max_c
    for temperature_excursion) or switch it off. Roles: customs, admin."""
    return _json(service.save_rule(uow, actor, kind, body.params, body.active))


@router.get("/monitoring/alerts")
def list_alerts(uow: Uow, actor: Reader, consignment_id: str | None = None, kind: str | None = None,
                limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)) -> Any:
    """Alerts on the consignments you may see, newest first. Roles: as for consignments."""
    return _json(service.list_alerts(uow, actor, consignment_id, kind, limit, offset))
