"""Transport in the demo zone: railway and sea bills of lading in every state, a declaration held
for its bill, and consignments by rail, rail–sea, Yangtze barge and air with the EPCIS events of their
journeys, including a changed seal, a broken seal and a late arrival, so the title pages, the
timelines and the alerts show something real.

Everything goes through the service functions with the clock set back (`clock_at`), in time order,
so each record, event and alert carries a plausible time; the same day gives the same data.

Who is who: Yuxinou Logistics issues the bills and reports the consignments (Guoyuan Port's barge
carries one leg). The registry holds Chinese enterprises only, so the German car dealers do not
appear: the bills Duisburg → Chongqing name Yuxinou as shipper, as the forwarder shipping for the
dealer's account, and Yuxinou endorses each to the car importer once the importer has paid.

Events are captured only when the EPCIS schema is configured (TRADEWINDOW_EPCIS_SCHEMA; `tradewindow
demo` uses the reference copy beside the checkout when there is one): without it capture is off, so
the consignments stay as planned."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from stdnum import iso6346

from tradewindow.customs import service as customs
from tradewindow.logistics import service as logistics
from tradewindow.logistics.model import equipment_epc, location_uri
from tradewindow.logistics.schema import SchemaNotConfigured, current_schema
from tradewindow.platform.auth import SYSTEM, Actor
from tradewindow.platform.db import UnitOfWork, clock_at
from tradewindow.titles import service as titles

EPCIS_CONTEXT = ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld", {"tw": "urn:tradewindow:epcis:"}]
# Local UTC offsets of the places on the routes, for eventTimeZoneOffset (standard time).
OFFSETS = {"CN": "+08:00", "KZ": "+05:00", "PL": "+01:00", "DE": "+01:00"}


def container(owner: str, serial: int) -> str:
    """An ISO 6346 container number with its check digit (owner code ending in U)."""
    base = f"{owner}{serial:06d}"
    return base + iso6346.calc_check_digit(base)


# The China–Europe Railway Express westbound (laptops) and eastbound (cars), a Land–Sea corridor
# consignment, a Yangtze barge and a flight.
WEST = [container("YXOU", n) for n in (318204, 318211, 318229)]
EAST = [container("YXOU", n) for n in (402117, 402125)]
CORRIDOR = [container("TGHU", n) for n in (861530, 861547)]
BARGE_BOXES = [container("GYPU", n) for n in (100214, 100221, 100239, 100246)]
BARGE = "YUGUOYUAN168"
FLIGHT = "3U8571"


@dataclass(frozen=True)
class Parties:
    car_importer: str
    electronics: str
    microelectronics: str
    aluminium: str
    carrier: str
    barge_operator: str
    bank: str


def load_demo_transport(engine: Engine, actors: Mapping[str, Actor], parties: Parties,
                        now: datetime | None = None) -> dict[str, int]:
    """Load the bills, the declaration held for its bill, the consignments and (when the EPCIS
    schema is configured) their events. Returns what was made, by kind."""
    base = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)

    def ago(days: float = 0, hours: float = 0) -> datetime:
        return base - timedelta(days=days, hours=hours)

    bills = _bills(engine, actors, parties, ago)
    declaration = _held_declaration(engine, actors, ago)
    consignments, documents = _consignments(engine, actors["carrier"], parties, ago)
    captured = 0
    if _epcis_configured():
        for moment, document in sorted(documents, key=lambda item: item[0]):
            with clock_at(moment + timedelta(minutes=4)):
                captured += logistics.capture(UnitOfWork(engine), actors["carrier"], document)["captured"]
    titles.publish_heads(UnitOfWork(engine), SYSTEM)
    return {"bills": bills, "declarations": 1 if declaration else 0, "consignments": consignments,
            "events": captured}


def _epcis_configured() -> bool:
    try:
        current_schema()
    except SchemaNotConfigured:
        return False
    return True


# --- bills of lading ------------------------------------------------------------------------------

CARS = "Passenger cars, new, {n} units (BMW X5, Mercedes-Benz GLE, Porsche Cayenne), in 40' containers"
HELD_BILL = "YXODUICQ000316"


def _bill(number: str, shipper: str, description: str, packages: int, mass: str, containers: list[str],
          receipt: str, delivery: str, reference: str | None = None) -> dict:
    body: dict[str, Any] = {
        "bol_number": number, "shipper_uscc": shipper, "consignee_uscc": None, "goods_description": description,
        "packages": packages, "gross_mass_kg": mass, "containers": containers, "place_of_receipt": receipt,
        "place_of_delivery": delivery}
    if reference:
        body["consignment_reference"] = reference
    return body


def _bills(engine: Engine, actors: Mapping[str, Actor], parties: Parties, ago) -> int:
    carrier, trader, bank = actors["carrier"], actors["trader"], actors["bank"]
    with clock_at(ago(60)):
        for actor in (carrier, trader, bank):
            titles.register_key(UnitOfWork(engine), actor, custodial=True)

    def at(moment: datetime, action, *args) -> None:
        with clock_at(moment):
            action(UnitOfWork(engine), *args)
    def issue(moment: datetime, body: dict) -> None:
        at(moment, lambda uow: titles.issue_bill(uow, carrier, body))

    importer, lender = parties.car_importer, parties.bank
    # Surrendered against delivery: came on the eastbound train below, financed and repaid.
    number = "YXODUICQ000298"
    issue(ago(40, 2), _bill(number, parties.carrier, CARS.format(n=8), 8, "17600", EAST, "DEDUI", "CNCKG",
                            "DEMO-CER-X9002"))
    at(ago(39, 20), titles.endorse, carrier, number, importer)
    at(ago(39, 2), titles.pledge, trader, number, lender)
    at(ago(26, 1), titles.release_pledge, bank, number)
    at(ago(25, 20), titles.surrender, trader, number)
    # Pledge released: the importer repaid the letter of credit; the goods are still to come.
    number = "YXODUICQ000305"
    issue(ago(30, 5), _bill(number, parties.carrier, CARS.format(n=4), 4, "8950",
                            [container("YXOU", 402233)], "DEDUI", "CNCKG"))
    at(ago(29, 3), titles.endorse, carrier, number, importer)
    at(ago(28, 6), titles.pledge, trader, number, lender)
    at(ago(3, 4), titles.release_pledge, bank, number)
    # Pledged to the bank for a letter of credit.
    number = "YXODUICQ000311"
    issue(ago(20, 7), _bill(number, parties.carrier, CARS.format(n=8), 8, "18240",
                            [container("YXOU", 402240), container("YXOU", 402258)], "DEDUI", "CNCKG"))
    at(ago(19, 2), titles.endorse, carrier, number, importer)
    at(ago(18, 5), titles.pledge, trader, number, lender)
    # Endorsed to the car importer.
    number = "YXODUICQ000312"
    issue(ago(12, 6), _bill(number, parties.carrier, CARS.format(n=4), 4, "9120",
                            [container("YXOU", 402263)], "DEDUI", "CNCKG"))
    at(ago(10, 3), titles.endorse, carrier, number, importer)
    # Still with the shipper: the importer has not paid yet (its declaration waits, below).
    issue(ago(6, 4), _bill(HELD_BILL, parties.carrier, CARS.format(n=4), 4, "8870",
                           [container("YXOU", 402271)], "DEDUI", "CNCKG"))
    # Westbound: laptops of Liangjiang Electronics on the train below, still with the shipper.
    issue(ago(12, 3), _bill("YXOCQDUI000121", parties.electronics, "Laptop computers, 1,260 cartons on 63 pallets",
                            1260, "31820.5", WEST, "CNCKG", "DEDUI", "DEMO-CER-X8001"))
    return 6 + _sea_bills(actors, parties, ago, at, issue)


def _sea_bill(number: str, shipper: str, description: str, packages: int, mass: str, containers: list[str],
              vessel: str, voyage: str, loading: str, discharge: str, receipt: str | None = None,
              delivery: str | None = None) -> dict:
    """A sea bill: port to port unless a place of receipt or delivery inland is named."""
    body = _bill(number, shipper, description, packages, mass, containers, receipt or loading,
                 delivery or discharge)
    return {**body, "kind": "sea_bill", "vessel": vessel, "voyage": voyage, "port_of_loading": loading,
            "port_of_discharge": discharge}


def _sea_bills(actors: Mapping[str, Actor], parties: Parties, ago, at, issue) -> int:
    """Sea bills (the same transferable record as the railway bills): cars from Hamburg to Shanghai,
    then up the Yangtze to Chongqing, financed by the bank; laptops by the Land–Sea corridor from
    Qinzhou to Singapore; and one voided before it changed hands."""
    carrier_actor, trader, bank = actors["carrier"], actors["trader"], actors["bank"]
    importer, lender = parties.car_importer, parties.bank
    # Surrendered against delivery after the letter of credit was repaid.
    number = "YXOHAMSHA00052"
    issue(ago(55, 3), _sea_bill(number, parties.carrier, CARS.format(n=12), 12, "26400",
                                [container("CSNU", n) for n in (614201, 614218, 614225)],
                                "COSCO SHIPPING TAURUS", "041E", "DEHAM", "CNSHA", delivery="CNCKG"))
    at(ago(54, 20), titles.endorse, carrier_actor, number, importer)
    at(ago(54, 2), titles.pledge, trader, number, lender)
    at(ago(21, 4), titles.release_pledge, bank, number)
    at(ago(20, 22), titles.surrender, trader, number)
    # Pledged to the bank: on the water from Hamburg.
    number = "YXOHAMSHA00058"
    issue(ago(16, 6), _sea_bill(number, parties.carrier, CARS.format(n=8), 8, "17850",
                                [container("CSNU", n) for n in (615106, 615113)],
                                "COSCO SHIPPING LEO", "043E", "DEHAM", "CNSHA", delivery="CNCKG"))
    at(ago(15, 22), titles.endorse, carrier_actor, number, importer)
    at(ago(15, 3), titles.pledge, trader, number, lender)
    # With the shipper: laptops by rail to Qinzhou, then by sea to Singapore (to order).
    issue(ago(5, 2), _sea_bill("YXOQZHSIN00017", parties.electronics, "Laptop computers, 840 cartons on 42 pallets",
                               840, "21210", [container("TGHU", n) for n in (861562, 861579)],
                               "XIN NAN SHA 9", "2611S", "CNQZH", "SGSIN", receipt="CNCKG"))
    # Voided by the carrier the same day: issued under the wrong voyage, reissued above.
    number = "YXOQZHSIN00016"
    issue(ago(5, 4), _sea_bill(number, parties.electronics, "Laptop computers, 840 cartons on 42 pallets", 840,
                               "21210", [container("TGHU", n) for n in (861562, 861579)], "XIN NAN SHA 9", "2610S",
                               "CNQZH", "SGSIN", receipt="CNCKG"))
    at(ago(5, 3), titles.void, carrier_actor, number)
    return 4


def _held_declaration(engine: Engine, actors: Mapping[str, Actor], ago) -> dict | None:
    """The car importer enters cars into the bonded zone under a bill it does not hold yet: customs
    clears what it can, and the declaration waits for the title (status title_hold)."""
    car = {"tariff_code": "87032361", "description": "Passenger car, 2.0 l petrol engine", "origin": "DE",
           "quantity": "4", "unit": "NAR", "net_mass_kg": "6600", "gross_mass_kg": "7120",
           "value": "168000.00", "licence_numbers": ["DEMO-AIL-0001"]}
    body = {"client_reference": "DEMO-BOL-0316", "type": "bonded_entry", "customs_office": "8012",
            "transport_mode": "rail", "transport_document": HELD_BILL, "country_of_dispatch": "DE",
            "incoterm": "CIF", "currency": "EUR", "invoice_total": "168000.00", "items": [car]}
    moment = ago(1, 6)
    with clock_at(moment):
        declaration = customs.lodge_declaration(UnitOfWork(engine), actors["trader"], body).declaration
    # Play the officers' part so that only the title holds the goods.
    moment += timedelta(hours=2)
    if declaration["status"] in ("document_check", "inspection"):
        with clock_at(moment):
            declaration = customs.record_control_result(UnitOfWork(engine), actors["customs"], declaration["id"],
                                                        True, "Invoice and valuation documents match")
    for task in declaration.get("agency_tasks", []):
        if task["status"] != "pending":
            continue
        officer = actors["quarantine" if task["agency_kind"] == "quarantine" else "licensing"]
        moment += timedelta(hours=1)
        with clock_at(moment):
            customs.decide_task(UnitOfWork(engine), officer, task["id"], "approve")
    with clock_at(moment):
        declaration = customs.get_declaration(UnitOfWork(engine), actors["trader"], declaration["id"])
    due = Decimal(declaration["total_due"])
    if declaration["status"] == "taxes_due" and due > 0:
        with clock_at(moment + timedelta(hours=1)):
            declaration = customs.record_payment(UnitOfWork(engine), actors["trader"], declaration["id"], "guarantee",
                                                 "DEMO-GUARANTEE-0316", due)
    return declaration


# --- consignments and their events ----------------------------------------------------------------

def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _stop(locode: str, arrival: datetime | None = None, departure: datetime | None = None) -> dict:
    stop: dict[str, Any] = {"location": locode}
    if arrival:
        stop["planned_arrival"] = _iso(arrival)
    if departure:
        stop["planned_departure"] = _iso(departure)
    return stop


def _boxes(numbers: list[str], seals: list[str], kind: str = "elock", on: str | None = None) -> list[dict]:
    units = []
    for number, seal in zip(numbers, seals, strict=True):
        unit: dict[str, Any] = {"kind": "container", "number": number, "seals": [{"number": seal, "kind": kind}]}
        if on:
            unit["carried_on"] = on
        units.append(unit)
    return units


def _event(moment: datetime, epcs: list[str], locode: str, biz_step: str, disposition: str = "in_transit",
           **fields: Any) -> dict:
    body = {"type": "ObjectEvent", "eventTime": _iso(moment), "eventTimeZoneOffset": OFFSETS[locode[:2]],
            "epcList": epcs, "action": "OBSERVE", "bizStep": biz_step, "disposition": disposition,
            "readPoint": {"id": location_uri(locode)}, "bizLocation": {"id": location_uri(locode)}}
    body.update(fields)
    return body


def _document(moment: datetime, *events: dict) -> tuple[datetime, dict]:
    return moment, {"@context": EPCIS_CONTEXT, "type": "EPCISDocument", "schemaVersion": "2.0",
                    "creationDate": _iso(moment + timedelta(minutes=3)), "epcisBody": {"eventList": list(events)}}


def _consignments(engine: Engine, carrier: Actor, parties: Parties, ago) -> tuple[int, list[tuple[datetime, dict]]]:
    """Report the consignments (as they were planned, on the day each was reported) and return the
    EPCIS documents of their journeys so far, each with the moment it was sent."""
    documents: list[tuple[datetime, dict]] = []

    def report(moment: datetime, body: dict) -> None:
        with clock_at(moment):
            logistics.register_consignment(UnitOfWork(engine), carrier, body)

    def seen(moment: datetime, epcs: list[str], locode: str, biz_step: str, **fields: Any) -> None:
        documents.append(_document(moment, _event(moment, epcs, locode, biz_step, **fields)))

    # 1. China–Europe Railway Express X8001 westbound: Tuanjie Village → Alashankou → Dostyk
    #    (gauge change) → Małaszewicze (gauge change, Polish customs) → Duisburg. Late at
    #    Małaszewicze, where customs opened one container and put its own seal on; now on the last leg.
    west = [equipment_epc("container", n) for n in WEST]
    report(ago(13), {
        "client_reference": "DEMO-CER-X8001", "transport_document": "YXOCQDUI000121",
        "trader": parties.electronics, "description": "Laptop computers for Duisburg (China–Europe Railway Express)",
        "legs": [{"mode": "rail", "route": [
            _stop("CNTNR", departure=ago(12)), _stop("CNAKU", ago(9), ago(8, 16)),
            _stop("KZDOS", ago(8, 12), ago(8)), _stop("PLMAL", ago(2, 12), ago(2)), _stop("DEDUI", ago(-1))]}],
        "equipment": _boxes(WEST, ["YXO-EL-20817", "YXO-EL-20818", "YXO-EL-20823"])})
    seen(ago(12, -1), west, "CNTNR", "departing")
    seen(ago(9, 2), west, "CNAKU", "arriving")
    seen(ago(8, 15), west, "CNAKU", "departing")
    seen(ago(8, 11), west, "KZDOS", "arriving")
    seen(ago(7, 18), west, "KZDOS", "departing")
    seen(ago(1, 15), west, "PLMAL", "arriving")                        # 21 hours late
    seen(ago(1, 12), west[1:2], "PLMAL", "inspecting",
         **{"tw:seal": {"number": "PL-SC-558812", "kind": "seal", "status": "intact"}})
    seen(ago(0, 20), west, "PLMAL", "departing")

    # 2. Eastbound X9002 with the importer's cars, Duisburg → Tuanjie Village: arrived, unloaded.
    east = [equipment_epc("container", n) for n in EAST]
    report(ago(41), {
        "client_reference": "DEMO-CER-X9002", "transport_document": "YXODUICQ000298",
        "trader": parties.car_importer, "description": "Passenger cars from Duisburg (China–Europe Railway Express)",
        "legs": [{"mode": "rail", "route": [
            _stop("DEDUI", departure=ago(40)), _stop("PLMAL", ago(38), ago(37, 12)),
            _stop("KZDOS", ago(31), ago(30, 12)), _stop("CNAKU", ago(30, 6), ago(29, 18)), _stop("CNTNR", ago(26))]}],
        "equipment": _boxes(EAST, ["DE-EL-770412", "DE-EL-770413"])})
    seen(ago(40, -1), east, "DEDUI", "departing")
    seen(ago(37, 22), east, "PLMAL", "arriving")
    seen(ago(37, 10), east, "PLMAL", "departing")
    seen(ago(31, -3), east, "KZDOS", "arriving")
    seen(ago(30, 10), east, "KZDOS", "departing")
    seen(ago(30, 4), east, "CNAKU", "arriving")
    seen(ago(29, 16), east, "CNAKU", "departing")
    seen(ago(26, 3), east, "CNTNR", "arriving")
    seen(ago(25, 22), east, "CNTNR", "unloading", disposition="container_open")

    # 3. New International Land–Sea Trade Corridor: rail to Qinzhou, then by sea. At the port gate
    #    one container's seal was found broken; customs holds both there, and the vessel sailed
    #    without them (the worker's dwell check flags them once they have stood too long).
    corridor = [equipment_epc("container", n) for n in CORRIDOR]
    report(ago(7), {
        "client_reference": "DEMO-ILSTC-0412", "transport_document": "YXO-ILSTC-260412",
        "trader": parties.electronics, "description": "Tablet computers by rail–sea via Qinzhou",
        "legs": [{"mode": "rail", "route": [_stop("CNTNR", departure=ago(6)), _stop("CNQZH", ago(4, 12))]},
                 {"mode": "sea", "route": [_stop("CNQZH", departure=ago(3)), _stop("CNSHA", ago(-1))]}],
        "equipment": _boxes(CORRIDOR, ["CN5120447", "CN5120448"], kind="seal")})
    seen(ago(6, -1), corridor, "CNTNR", "departing")
    seen(ago(4, 14), corridor, "CNQZH", "arriving")
    seen(ago(4, 11), corridor[1:], "CNQZH", "inspecting",
         **{"tw:seal": {"number": "CN5120448", "kind": "seal", "status": "broken"}})
    seen(ago(4, 10), corridor[:1], "CNQZH", "inspecting",
         **{"tw:seal": {"number": "CN5120447", "kind": "seal", "status": "intact"}})

    # 4. Yangtze barge from Guoyuan Port down to Shanghai: loaded, sailing.
    barge = equipment_epc("barge", BARGE)
    boxes = [equipment_epc("container", n) for n in BARGE_BOXES]
    report(ago(3), {
        "client_reference": "DEMO-YANGTZE-0168", "transport_document": "GYP-SH-2604-0168",
        "trader": parties.aluminium, "description": "Unwrought aluminium ingots by Yangtze barge",
        "legs": [{"mode": "river", "carrier": parties.barge_operator,
                  "route": [_stop("CNGYP", departure=ago(1, 6)), _stop("CNSHA", ago(-5))]}],
        "equipment": [{"kind": "barge", "number": BARGE},
                      *_boxes(BARGE_BOXES, ["GY70021", "GY70022", "GY70023", "GY70024"], kind="seal", on=BARGE)]})
    loading = ago(1, 10)
    documents.append(_document(loading, {
        "type": "AggregationEvent", "eventTime": _iso(loading), "eventTimeZoneOffset": "+08:00",
        "parentID": barge, "childEPCs": boxes, "action": "ADD", "bizStep": "loading",
        "disposition": "in_transit", "readPoint": {"id": location_uri("CNGYP")},
        "bizLocation": {"id": location_uri("CNGYP")}}))
    seen(ago(1, 5), [barge], "CNGYP", "departing")

    # 5. A flight from Jiangbei airport with integrated circuits, on time.
    flight = equipment_epc("flight", FLIGHT)
    report(ago(3), {
        "client_reference": "DEMO-AIR-3U8571", "transport_document": "784-20260412",
        "trader": parties.microelectronics, "description": "Integrated circuits by air via Shanghai Pudong",
        "legs": [{"mode": "air", "route": [_stop("CNCKG", departure=ago(2, 3)), _stop("CNSHA", ago(2, 0.75))]}],
        "equipment": [{"kind": "flight", "number": FLIGHT}]})
    seen(ago(2, 2.9), [flight], "CNCKG", "departing")
    seen(ago(2, 0.9), [flight], "CNSHA", "arriving")
    return 5, documents
