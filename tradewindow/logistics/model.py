"""The logistics domain, pure: consignments with legs and planned routes, transport equipment and
seals, the facts Trade Window reads out of a GS1 EPCIS 2.0 event, the event hash, and the
monitoring rules that turn events into alerts. No I/O.

How Trade Window names things inside EPCIS events
-------------------------------------------------
EPCIS identifies objects by URI. Transport equipment that has no GS1 identifier of its own is
named ``urn:tradewindow:<kind>:<number>`` (``urn:tradewindow:container:CSQU3054383``); a carrier
may register any other URI (a GIAI, an SSCC) as the equipment's ``epc`` instead. Places on a
planned route are UN/LOCODEs; an event says it happened there with a ``bizLocation`` (or
``readPoint``) id ``urn:tradewindow:location:<LOCODE>``. Seals and e-locks travel as an extension
field of the event (EPCIS allows namespaced extensions; ``tw`` maps to :data:`TW_NAMESPACE`)::

    "tw:seal": {"number": "CN4471023", "kind": "elock", "status": "intact"}

Temperatures are read from the standard ``sensorElementList`` (type ``Temperature`` or
``gs1:Temperature``, unit CEL, FAH or KEL).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cached_property
from typing import Any, Protocol

from stdnum import iso6346, luhn

from tradewindow.platform.errors import Problems
from tradewindow.platform.fields import FieldReader

TW_NAMESPACE = "urn:tradewindow:epcis:"
LOCATION_PREFIX = "urn:tradewindow:location:"
EQUIPMENT_PREFIX = "urn:tradewindow:"
SEAL_FIELDS = ("tw:seal", TW_NAMESPACE + "seal")


class Mode(StrEnum):
    RAIL = "rail"
    SEA = "sea"
    RIVER = "river"
    ROAD = "road"
    AIR = "air"


class EquipmentKind(StrEnum):
    CONTAINER = "container"
    WAGON = "wagon"
    BARGE = "barge"
    FLIGHT = "flight"


class SealKind(StrEnum):
    SEAL = "seal"        # a one-time bolt or cable seal
    ELOCK = "elock"      # an electronic lock that reports its state


# A wagon runs on rail, a barge on a river or at sea, a flight in the air; a container on anything.
EQUIPMENT_MODES: dict[EquipmentKind, frozenset[Mode]] = {
    EquipmentKind.CONTAINER: frozenset(Mode),
    EquipmentKind.WAGON: frozenset({Mode.RAIL}),
    EquipmentKind.BARGE: frozenset({Mode.RIVER, Mode.SEA}),
    EquipmentKind.FLIGHT: frozenset({Mode.AIR}),
}
CARRIAGES = frozenset({EquipmentKind.WAGON, EquipmentKind.BARGE, EquipmentKind.FLIGHT})
SEALABLE = frozenset({EquipmentKind.CONTAINER, EquipmentKind.WAGON})

LOCODE = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
SEAL_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9\-]{3,34}$")
# China Railway numbers a wagon by type and a seven-digit serial (C70 1234567); UIC wagons carry
# twelve digits whose last is a Luhn check digit (UIC leaflet 920-1).
CN_WAGON = re.compile(r"^[A-Z][A-Z0-9]{0,5}\d{7}$")
UIC_WAGON = re.compile(r"^\d{12}$")
# A barge is named by its registration: the European number (ENI, eight digits) or a national
# registration or name.
BARGE = re.compile(r"^[\w][\w\-]{2,34}$")
# IATA flight designator: airline (two characters, or three ICAO letters) and 1-4 digits.
FLIGHT = re.compile(r"^(?=.*[A-Z])[A-Z0-9]{2}[A-Z]?\d{1,4}[A-Z]?$")


def compact(number: str) -> str:
    return re.sub(r"[\s\-./]", "", number).upper()


def equipment_problem(kind: EquipmentKind, number: str) -> tuple[str, str] | None:
    """(code, message) when `number` is not a valid number for equipment of `kind`."""
    text = compact(number)
    if kind is EquipmentKind.CONTAINER and not iso6346.is_valid(text):
        return ("invalid_container_number", "A container number is ISO 6346: owner code, category, "
                "six digits and a check digit (CSQU3054383); this one is not valid.")
    if kind is EquipmentKind.WAGON and not (
            CN_WAGON.match(text) or (UIC_WAGON.match(text) and luhn.is_valid(text))):
        return ("invalid_wagon_number", "A wagon number is a China Railway type and seven-digit "
                "serial (C701234567) or a twelve-digit UIC number with a valid check digit.")
    if kind is EquipmentKind.BARGE and not BARGE.match(text):
        return ("invalid_barge_number", "A barge is named by its registration (3 to 35 letters or digits).")
    if kind is EquipmentKind.FLIGHT and not FLIGHT.match(text):
        return ("invalid_flight_number", "A flight is an IATA designator: airline and number (CA1234).")
    return None


def equipment_epc(kind: EquipmentKind | str, number: str) -> str:
    return f"{EQUIPMENT_PREFIX}{EquipmentKind(kind).value}:{compact(number)}"


def location_uri(locode: str) -> str:
    return LOCATION_PREFIX + locode


def locode_of(uri: str | None) -> str | None:
    if uri and uri.startswith(LOCATION_PREFIX):
        code = uri[len(LOCATION_PREFIX):].upper()
        return code if LOCODE.match(code) else None
    return None


def parse_instant(value: object) -> datetime | None:
    """An ISO 8601 date-time with its UTC offset ("2026-03-01T08:00:00+08:00" or "...Z"), in UTC;
    None when it is not one."""
    if not isinstance(value, str) or "T" not in value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def parse_number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


# --- consignments ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stop:
    locode: str
    planned_arrival: datetime | None
    planned_departure: datetime | None


@dataclass(frozen=True)
class Leg:
    mode: Mode
    carrier_id: str
    stops: tuple[Stop, ...]


@dataclass(frozen=True)
class Seal:
    number: str
    kind: SealKind


@dataclass(frozen=True)
class Equipment:
    kind: EquipmentKind
    number: str
    epc: str
    seals: tuple[Seal, ...]
    carried_on: str | None     # the number of the wagon, barge or flight it travels on


@dataclass(frozen=True)
class ConsignmentPlan:
    client_reference: str
    transport_document: str
    trader_id: str
    description: str
    legs: tuple[Leg, ...]
    equipment: tuple[Equipment, ...]
    temperature_min: Decimal | None
    temperature_max: Decimal | None

    @property
    def route(self) -> list[Stop]:
        """The whole journey's stops in order; where a leg starts at the previous leg's last stop,
        that place appears once."""
        stops: list[Stop] = []
        for leg in self.legs:
            for index, stop in enumerate(leg.stops):
                if index == 0 and stops and stops[-1].locode == stop.locode:
                    stops[-1] = Stop(stop.locode, stops[-1].planned_arrival,
                                     stop.planned_departure or stops[-1].planned_departure)
                else:
                    stops.append(stop)
        return stops


class Lookups(Protocol):
    def enterprise(self, uscc: str) -> tuple[str, frozenset[str]] | None:
        """(id, kinds) of the registered, active enterprise with this credit code."""

    def is_location(self, locode: str) -> bool: ...


CONSIGNMENT_FIELDS = frozenset({"client_reference", "transport_document", "trader", "description", "legs",
                                "equipment", "temperature"})
LEG_FIELDS = frozenset({"mode", "carrier", "route"})
STOP_FIELDS = frozenset({"location", "planned_arrival", "planned_departure"})
EQUIPMENT_FIELDS = frozenset({"kind", "number", "epc", "seals", "carried_on"})
SEAL_INPUT_FIELDS = frozenset({"number", "kind"})
TEMPERATURE_FIELDS = frozenset({"min", "max"})


def check_consignment(raw: object, lookups: Lookups, default_carrier_id: str | None) -> tuple[
        ConsignmentPlan | None, Problems]:
    """Read a consignment as a carrier reports it, collecting every problem."""
    problems = Problems()
    if not isinstance(raw, Mapping):
        problems.add("", "not_an_object", "The consignment is a JSON object.")
        return None, problems
    fields = FieldReader(raw, "", problems)
    fields.refuse_unknown(CONSIGNMENT_FIELDS)
    client_reference = fields.text("client_reference", required=True, max_length=64)
    document = fields.text("transport_document", required=True, max_length=64)
    description = fields.text("description", max_length=500) or ""
    trader_id = _enterprise(fields, "trader", lookups, required=True)
    legs = _legs(fields, lookups, default_carrier_id)
    modes = {leg.mode for leg in legs or ()}
    equipment = _equipment(fields, modes if legs is not None else None)
    temperature_min, temperature_max = _temperature(fields)
    if problems or client_reference is None or document is None or trader_id is None or legs is None:
        return None, problems
    return ConsignmentPlan(client_reference, document, trader_id, description, tuple(legs), tuple(equipment),
                           temperature_min, temperature_max), problems


def _enterprise(fields: FieldReader, name: str, lookups: Lookups, *, required: bool,
                kind: str | None = None) -> str | None:
    uscc = fields.text(name, required=required, max_length=40)
    if uscc is None:
        return None
    found = lookups.enterprise(uscc.upper())
    if found is None:
        fields.add(name, "unknown_enterprise", f"No active enterprise with credit code {uscc} is registered.")
        return None
    enterprise_id, kinds = found
    if kind is not None and kind not in kinds:
        fields.add(name, f"not_a_{kind}", f"The enterprise {uscc} is not registered as a {kind}.")
        return None
    return enterprise_id


def _legs(fields: FieldReader, lookups: Lookups, default_carrier_id: str | None) -> list[Leg] | None:
    items = fields.items("legs", required=True, max_items=20)
    if items is None:
        return None
    legs: list[Leg] = []
    ok = True
    for index, item in enumerate(items):
        path = fields.path(f"legs[{index}]")
        if not isinstance(item, Mapping):
            fields.problems.add(path, "not_an_object", "A leg is an object.")
            ok = False
            continue
        leg = FieldReader(item, path, fields.problems)
        leg.refuse_unknown(LEG_FIELDS)
        mode = leg.choice("mode", {m.value for m in Mode}, required=True)
        carrier_id = (_enterprise(leg, "carrier", lookups, required=False, kind="carrier")
                      if leg.given("carrier") else default_carrier_id)
        stops = _stops(leg, lookups)
        if mode is None or carrier_id is None or stops is None:
            ok = False
            continue
        if legs and legs[-1].stops[-1].locode != stops[0].locode:
            leg.add("route[0].location", "legs_not_connected",
                    f"This leg starts at {stops[0].locode} but the previous one ends at "
                    f"{legs[-1].stops[-1].locode}.")
            ok = False
        legs.append(Leg(Mode(mode), carrier_id, tuple(stops)))
    if ok and legs:
        _check_times_in_order(fields, legs)
    return legs if ok else None


def _stops(leg: FieldReader, lookups: Lookups) -> list[Stop] | None:
    items = leg.items("route", required=True, max_items=50)
    if items is None:
        return None
    if len(items) < 2:
        leg.add("route", "route_too_short", "A leg's route names at least where it starts and where it ends.")
        return None
    stops: list[Stop] = []
    ok = True
    for index, item in enumerate(items):
        path = leg.path(f"route[{index}]")
        if not isinstance(item, Mapping):
            leg.problems.add(path, "not_an_object", "A stop is an object.")
            ok = False
            continue
        stop = FieldReader(item, path, leg.problems)
        stop.refuse_unknown(STOP_FIELDS)
        locode = stop.text("location", required=True, max_length=10)
        if locode is not None:
            locode = locode.replace(" ", "").upper()
            if not LOCODE.match(locode):
                stop.add("location", "invalid_locode", "A location is a UN/LOCODE: country and three "
                         "letters or digits (CNCKG).")
                locode = None
            elif not lookups.is_location(locode):
                stop.add("location", "unknown_location", f"{locode} is not in the location code list.")
                locode = None
        arrival = _instant(stop, "planned_arrival")
        departure = _instant(stop, "planned_departure")
        if arrival and departure and departure < arrival:
            stop.add("planned_departure", "departure_before_arrival",
                     "The planned departure is before the planned arrival at this stop.")
            ok = False
        if locode is None:
            ok = False
            continue
        stops.append(Stop(locode, arrival, departure))
    return stops if ok else None


def _instant(reader: FieldReader, name: str) -> datetime | None:
    if not reader.given(name):
        return None
    moment = parse_instant(reader.raw.get(name))
    if moment is None:
        reader.add(name, "invalid_datetime", f"{name} is a date and time with its UTC offset, "
                   "like 2026-03-01T08:00:00+08:00.")
    return moment


def _check_times_in_order(fields: FieldReader, legs: list[Leg]) -> None:
    last: datetime | None = None
    for leg_index, leg in enumerate(legs):
        for stop_index, stop in enumerate(leg.stops):
            for name, moment in (("planned_arrival", stop.planned_arrival),
                                 ("planned_departure", stop.planned_departure)):
                if moment is None:
                    continue
                if last is not None and moment < last:
                    fields.problems.add(f"legs[{leg_index}].route[{stop_index}].{name}", "planned_times_out_of_order",
                                        "The planned times go back in time along the route.")
                    return
                last = moment


def _equipment(fields: FieldReader, modes: set[Mode] | None) -> list[Equipment]:
    items = fields.items("equipment", max_items=500) or []
    result: list[Equipment] = []
    seen: set[str] = set()
    kinds_by_number: dict[str, EquipmentKind] = {}
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("number"), str) and isinstance(item.get("kind"), str):
            try:
                kinds_by_number[compact(item["number"])] = EquipmentKind(item["kind"])
            except ValueError:
                pass
    for index, item in enumerate(items):
        path = fields.path(f"equipment[{index}]")
        if not isinstance(item, Mapping):
            fields.problems.add(path, "not_an_object", "A piece of equipment is an object.")
            continue
        unit = FieldReader(item, path, fields.problems)
        unit.refuse_unknown(EQUIPMENT_FIELDS)
        kind_text = unit.choice("kind", {k.value for k in EquipmentKind}, required=True)
        number = unit.text("number", required=True, max_length=35)
        epc = unit.text("epc", max_length=300)
        carried_on = unit.text("carried_on", max_length=35)
        seals = _seals(unit)
        if kind_text is None or number is None:
            continue
        kind = EquipmentKind(kind_text)
        if problem := equipment_problem(kind, number):
            unit.add("number", *problem)
            continue
        number = compact(number)
        if number in seen:
            unit.add("number", "duplicate_equipment", f"{number} is listed twice.")
            continue
        seen.add(number)
        if modes is not None and not (EQUIPMENT_MODES[kind] & modes):
            unit.add("kind", "equipment_mode_mismatch",
                     f"A {kind.value} needs a leg by {' or '.join(sorted(EQUIPMENT_MODES[kind]))}.")
        if seals and kind not in SEALABLE:
            unit.add("seals", "seal_not_allowed", f"A {kind.value} is not sealed; seal its containers or wagons.")
        if carried_on is not None:
            carried_on = compact(carried_on)
            if carried_on not in kinds_by_number:
                unit.add("carried_on", "unknown_carriage",
                         f"{carried_on} is not listed in this consignment's equipment.")
            elif kind is not EquipmentKind.CONTAINER or kinds_by_number[carried_on] not in CARRIAGES:
                unit.add("carried_on", "invalid_carriage", "A container travels on a wagon, a barge or a flight.")
        result.append(Equipment(kind, number, epc or equipment_epc(kind, number), tuple(seals), carried_on))
    return result


def _seals(unit: FieldReader) -> list[Seal]:
    items = unit.items("seals", max_items=10) or []
    seals = []
    for index, item in enumerate(items):
        path = unit.path(f"seals[{index}]")
        if not isinstance(item, Mapping):
            unit.problems.add(path, "not_an_object", "A seal is an object.")
            continue
        seal = FieldReader(item, path, unit.problems)
        seal.refuse_unknown(SEAL_INPUT_FIELDS)
        number = seal.text("number", required=True, max_length=35)
        kind = seal.choice("kind", {k.value for k in SealKind}) or SealKind.SEAL.value
        if number is None:
            continue
        if not SEAL_NUMBER.match(compact(number)):
            seal.add("number", "invalid_seal_number", "A seal number has 4 to 35 letters, digits or hyphens.")
            continue
        seals.append(Seal(compact(number), SealKind(kind)))
    return seals


def _temperature(fields: FieldReader) -> tuple[Decimal | None, Decimal | None]:
    raw = fields.obj("temperature")
    if raw is None:
        return None, None
    reader = FieldReader(raw, fields.path("temperature"), fields.problems)
    reader.refuse_unknown(TEMPERATURE_FIELDS)
    low, high = (parse_number(raw.get("min")), parse_number(raw.get("max")))
    for name, value in (("min", low), ("max", high)):
        if value is None:
            reader.add(name, "not_a_number", f"temperature.{name} is a number of degrees Celsius, like \"-18\".")
    if low is not None and high is not None and low > high:
        reader.add("max", "temperature_range_inverted", "The highest temperature is below the lowest.")
    return low, high


# --- EPCIS events ---------------------------------------------------------------------------------

EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent")
CBV_PREFIXES = {
    "bizStep": ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-",
                "http://ref.gs1.org/cbv/BizStep-", "cbv:BizStep-"),
    "disposition": ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-",
                    "http://ref.gs1.org/cbv/Disp-", "cbv:Disp-"),
}
TEMPERATURE_TYPES = frozenset({"Temperature", "gs1:Temperature", "https://gs1.org/voc/Temperature",
                               "http://gs1.org/voc/Temperature"})
# Lists whose order carries no meaning: sorted before hashing, so a reordered list hashes the same.
UNORDERED_LISTS = frozenset({"epcList", "childEPCs", "inputEPCList", "outputEPCList", "quantityList",
                             "childQuantityList", "inputQuantityList", "outputQuantityList",
                             "bizTransactionList", "sourceList", "destinationList", "sensorElementList",
                             "sensorReport", "correctiveEventIDs", "certificationInfo"})
EPC_ROLES = (("epcList", "epc"), ("childEPCs", "child"), ("inputEPCList", "input"), ("outputEPCList", "output"))


def cbv_short(kind: str, value: object) -> str | None:
    """A CBV value in its bare form ("shipping"), whichever of the standard's spellings was sent;
    a value outside the CBV stays as it is (a URI)."""
    if not isinstance(value, str) or not value:
        return None
    for prefix in CBV_PREFIXES[kind]:
        if value.startswith(prefix):
            return value[len(prefix):]
    return value


def events_of(document: Mapping[str, Any]) -> list[dict]:
    """The events a schema-valid EPCIS document carries: an EPCISDocument's event list, an
    EPCISQueryDocument's results, or the document itself when it is one event."""
    kind = document.get("type")
    if kind == "EPCISDocument":
        return list(document.get("epcisBody", {}).get("eventList", []))
    if kind == "EPCISQueryDocument":
        body = document.get("epcisBody", {}).get("queryResults", {}).get("resultsBody", {})
        return list(body.get("eventList", []))
    return [dict(document)]


def event_list_path(document: Mapping[str, Any], index: int) -> str:
    kind = document.get("type")
    if kind == "EPCISDocument":
        return f"epcisBody.eventList[{index}]"
    if kind == "EPCISQueryDocument":
        return f"epcisBody.queryResults.resultsBody.eventList[{index}]"
    return ""


@dataclass(frozen=True)
class SealReading:
    number: str
    kind: str
    broken: bool


@dataclass(frozen=True)
class EventFacts:
    """What Trade Window indexes and monitors from one event; the event itself is kept whole."""

    event_id: str
    hashed: bool                     # the id is our hash: the event came without one
    type: str
    action: str | None
    event_time: datetime
    time_zone_offset: str | None
    biz_step: str | None
    disposition: str | None
    read_point: str | None
    biz_location: str | None
    locode: str | None
    epcs: tuple[tuple[str, str], ...]     # (epc, role): epc, child, parent, input, output
    seal: SealReading | None
    temperatures: tuple[tuple[datetime, Decimal], ...]   # degrees Celsius

    @cached_property
    def parent(self) -> str | None:
        return next((epc for epc, role in self.epcs if role == "parent"), None)

    def epcs_in(self, *roles: str) -> list[str]:
        return [epc for epc, role in self.epcs if role in roles]


def event_facts(event: Mapping[str, Any], path: str, problems: Problems) -> EventFacts | None:
    """Read a schema-valid event. The schema leaves formats unchecked (draft-07: `format` is an
    annotation), so the times and our own extension are checked here."""

    def at(name: str) -> str:
        return f"{path}.{name}" if path else name

    event_time = parse_instant(event.get("eventTime"))
    if event_time is None:
        problems.add(at("eventTime"), "invalid_event_time",
                     "eventTime is a date and time with its UTC offset (2026-03-01T08:00:00.000+08:00).")
    seal = _seal_reading(event, at, problems)
    temperatures = _temperatures(event, event_time)
    if event_time is None or (seal is None and any(key in event for key in SEAL_FIELDS)):
        return None
    epcs: list[tuple[str, str]] = []
    for key, role in EPC_ROLES:
        epcs.extend((epc, role) for epc in event.get(key) or () if isinstance(epc, str))
    if isinstance(event.get("parentID"), str):
        epcs.append((event["parentID"], "parent"))
    read_point = _place(event.get("readPoint"))
    biz_location = _place(event.get("bizLocation"))
    given_id = event.get("eventID")
    event_id = given_id if isinstance(given_id, str) and given_id else event_hash(event)
    return EventFacts(
        event_id=event_id, hashed=not (isinstance(given_id, str) and given_id), type=str(event.get("type")),
        action=event.get("action") if isinstance(event.get("action"), str) else None,
        event_time=event_time, time_zone_offset=_text(event.get("eventTimeZoneOffset")),
        biz_step=cbv_short("bizStep", event.get("bizStep")),
        disposition=cbv_short("disposition", event.get("disposition")),
        read_point=read_point, biz_location=biz_location,
        locode=locode_of(biz_location) or locode_of(read_point),
        epcs=tuple(dict.fromkeys(epcs)), seal=seal, temperatures=tuple(temperatures))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _place(value: object) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return value["id"]
    return None


def _seal_reading(event: Mapping[str, Any], at: Any, problems: Problems) -> SealReading | None:
    for key in SEAL_FIELDS:
        if key not in event:
            continue
        raw = event[key]
        number = raw.get("number") if isinstance(raw, Mapping) else None
        kind = raw.get("kind", "seal") if isinstance(raw, Mapping) else None
        status = raw.get("status", "intact") if isinstance(raw, Mapping) else None
        if (not isinstance(number, str) or not SEAL_NUMBER.match(compact(number))
                or kind not in {k.value for k in SealKind} or status not in ("intact", "broken")):
            problems.add(at(key), "invalid_seal", "tw:seal is an object: number (4 to 35 letters or digits), "
                         "kind (seal or elock) and status (intact or broken).")
            return None
        return SealReading(compact(number), kind, status == "broken")
    return None


def _temperatures(event: Mapping[str, Any], event_time: datetime | None) -> list[tuple[datetime, Decimal]]:
    readings: list[tuple[datetime, Decimal]] = []
    for element in event.get("sensorElementList") or ():
        if not isinstance(element, Mapping):
            continue
        metadata = element.get("sensorMetadata") if isinstance(element.get("sensorMetadata"), Mapping) else {}
        for report in element.get("sensorReport") or ():
            if not isinstance(report, Mapping) or report.get("type") not in TEMPERATURE_TYPES:
                continue
            moment = parse_instant(report.get("time")) or parse_instant(metadata.get("time")) or event_time
            for key in ("value", "minValue", "maxValue"):
                value = parse_number(report.get(key))
                if value is not None and moment is not None:
                    readings.append((moment, celsius(value, str(report.get("uom") or "CEL"))))
    return readings


def celsius(value: Decimal, uom: str) -> Decimal:
    """UN/ECE Rec. 20 units: CEL (°C), FAH (°F), KEL (K)."""
    if uom == "FAH":
        return ((value - 32) * 5 / 9).quantize(Decimal("0.01"))
    if uom == "KEL":
        return value - Decimal("273.15")
    return value


def event_hash(event: Mapping[str, Any]) -> str:
    """The event's id when it came without one: SHA-256 over a canonical form of its content, as
    an RFC 6920 `ni` URI like the EPCIS 2.0 event hash.

    How this differs from the standard's algorithm (CBV 2.0 §8.9): the standard hashes a pre-hash
    string of the fields in a fixed order, with every identifier normalised (GS1 Digital Link to
    EPC URN, compact CBV values to full URIs, extension fields by their expanded namespace). We
    hash canonical JSON instead: keys sorted, unordered lists sorted, eventTime in UTC with
    milliseconds, CBV values in their bare form, and the fields the standard leaves out
    (eventID, recordTime, errorDeclaration, the JSON-LD @context) left out. Two captures of the
    same event therefore get the same id here, but not necessarily the id another repository
    computes; an event that carries its own eventID keeps it."""
    content = {k: v for k, v in event.items() if k not in ("eventID", "recordTime", "errorDeclaration", "@context")}
    moment = parse_instant(content.get("eventTime"))
    if moment is not None:
        content["eventTime"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for kind in CBV_PREFIXES:
        if isinstance(content.get(kind), str):
            content[kind] = cbv_short(kind, content[kind])
    digest = hashlib.sha256(_canonical(content).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"


# What json.dumps(value, ensure_ascii=False, separators=(",", ":")) writes, without making a new
# encoder for every value: capture hashes every event that comes without an id.
_json_string = json.encoder.encode_basestring
_json_value = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _canonical(value: Any, key: str | None = None) -> str:
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is dict or isinstance(value, Mapping):
        return "{" + ",".join((_json_string(k) if type(k) is str else _json_value(k)) + ":" + _canonical(v, k)
                              for k, v in sorted(value.items())) + "}"
    if kind is list or isinstance(value, list):
        parts = [_json_string(v) if type(v) is str else _canonical(v) for v in value]
        if key in UNORDERED_LISTS:
            parts.sort()
        return "[" + ",".join(parts) + "]"
    if isinstance(value, float) and value.is_integer():
        value = int(value)       # 26.0 and 26 are the same reading
    return _json_value(value)


# --- monitoring -----------------------------------------------------------------------------------

class RuleKind(StrEnum):
    SEAL_BROKEN = "seal_broken"
    SEAL_CHANGED = "seal_changed"
    DWELL = "dwell_exceeded"
    OFF_ROUTE = "off_route"
    LATE_ARRIVAL = "late_arrival"
    TEMPERATURE = "temperature_excursion"


# The zone's defaults; customs replaces them with rules kept in the database (monitoring_rules).
DEFAULT_RULES: dict[RuleKind, dict[str, Any]] = {
    RuleKind.SEAL_BROKEN: {},
    RuleKind.SEAL_CHANGED: {},
    RuleKind.DWELL: {"hours": "48"},
    RuleKind.OFF_ROUTE: {},
    RuleKind.LATE_ARRIVAL: {"hours": "12"},
    # Applies to consignments that state a temperature range, and with min_c / max_c to all.
    RuleKind.TEMPERATURE: {"tolerance_c": "0.5"},
}
RULE_PARAMETERS: dict[RuleKind, frozenset[str]] = {
    RuleKind.SEAL_BROKEN: frozenset(),
    RuleKind.SEAL_CHANGED: frozenset(),
    RuleKind.DWELL: frozenset({"hours"}),
    RuleKind.OFF_ROUTE: frozenset(),
    RuleKind.LATE_ARRIVAL: frozenset({"hours"}),
    RuleKind.TEMPERATURE: frozenset({"tolerance_c", "min_c", "max_c"}),
}


@dataclass(frozen=True)
class Rules:
    """The active rules and their parameters."""

    params: Mapping[RuleKind, Mapping[str, Any]]

    def on(self, kind: RuleKind) -> bool:
        return kind in self.params

    def number(self, kind: RuleKind, name: str) -> Decimal | None:
        value = self.params.get(kind, {}).get(name)
        return parse_number(value) if value is not None else None


def effective_rules(stored: Sequence[Mapping[str, Any]]) -> Rules:
    """Defaults overlaid by the stored rules (kind, params, active)."""
    params: dict[RuleKind, Mapping[str, Any]] = dict(DEFAULT_RULES)
    for row in stored:
        try:
            kind = RuleKind(row["kind"])
        except ValueError:
            continue
        if row["active"]:
            params[kind] = dict(row["params"] or {})
        else:
            params.pop(kind, None)
    return Rules(params)


def check_rule(kind: str, params: object) -> Problems:
    problems = Problems()
    try:
        rule = RuleKind(kind)
    except ValueError:
        problems.add("kind", "invalid_choice", f"A rule is one of: {', '.join(k.value for k in RuleKind)}.")
        return problems
    if not isinstance(params, Mapping):
        problems.add("params", "not_an_object", "params is an object.")
        return problems
    for name in sorted(set(params) - RULE_PARAMETERS[rule]):
        problems.add(f"params.{name}", "unknown_field", f"{name!r} is not a parameter of {rule.value}.")
    for name in sorted(set(params) & RULE_PARAMETERS[rule]):
        value = parse_number(params[name])
        if value is None:
            problems.add(f"params.{name}", "not_a_number", f"{name} is a number written as a string, like \"24\".")
        elif (name == "hours" and value <= 0) or (name == "tolerance_c" and value < 0):
            problems.add(f"params.{name}", "out_of_range", f"{name} must be above zero.")
    low, high = parse_number(params.get("min_c")), parse_number(params.get("max_c"))
    if low is not None and high is not None and low > high:
        problems.add("params.max_c", "temperature_range_inverted", "max_c is below min_c.")
    return problems


@dataclass(frozen=True)
class StopState:
    locode: str
    planned_arrival: datetime | None
    planned_departure: datetime | None
    actual_arrival: datetime | None = None
    actual_departure: datetime | None = None


@dataclass(frozen=True)
class UnitState:
    """What is known of one piece of equipment: where it is since when, its seal, its last event."""

    number: str
    kind: str
    seal_number: str | None = None
    seal_kind: str | None = None
    seal_broken: bool = False
    locode: str | None = None
    located_since: datetime | None = None
    last_event_time: datetime | None = None


@dataclass(frozen=True)
class Alert:
    kind: RuleKind
    key: str                  # one alert per consignment, kind and key: a rule fires once
    equipment: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Assessment:
    alerts: list[Alert] = field(default_factory=list)
    stops: list[StopState] = field(default_factory=list)
    units: dict[str, UnitState] = field(default_factory=dict)


def assess(rules: Rules, reference: str, stops: Sequence[StopState], units: Sequence[UnitState],
           direct: set[str], facts: EventFacts, temperature_range: tuple[Decimal | None, Decimal | None]
           ) -> Assessment:
    """What one event changes for one consignment: the stops reached or left, where each affected
    unit is and which seal it carries, and the alerts the rules raise. `units` are the affected
    equipment (the event's own objects and what they contain); `direct` names those the event
    is about itself (seal and sensor readings belong to them, not to their contents)."""
    result = Assessment(stops=list(stops), units={u.number: u for u in units})
    final = stops[-1].locode if stops else None
    route = {s.locode for s in stops}
    locode = facts.locode

    if locode is not None:
        if rules.on(RuleKind.OFF_ROUTE) and locode not in route:
            result.alerts.append(Alert(
                RuleKind.OFF_ROUTE, locode, None,
                f"Consignment {reference} was seen at {locode}, which is not on its planned route.",
                {"location": locode, "event_time": facts.event_time}))
        _reach_stop(rules, reference, result, facts)

    for unit in units:
        state = unit
        if unit.number in direct:
            state = _seal(rules, reference, result, state, facts, final)
            _temperature_check(rules, reference, result, state, facts, temperature_range)
        in_order = state.last_event_time is None or facts.event_time >= state.last_event_time
        if in_order:
            changes: dict[str, Any] = {"last_event_time": facts.event_time}      # one replace() a unit
            if locode is not None:
                if state.locode == locode and state.located_since is not None:
                    dwell = facts.event_time - state.located_since
                    if _over(rules, RuleKind.DWELL, dwell) and locode != final:
                        result.alerts.append(Alert(
                            RuleKind.DWELL, f"{state.number}:{locode}:{state.located_since.isoformat()}",
                            state.number, f"{state.number} of consignment {reference} has stood at {locode} "
                            f"for {_hours(dwell)} hours.", {"location": locode, "since": state.located_since,
                                                            "hours": _hours(dwell)}))
                else:
                    changes.update(locode=locode, located_since=facts.event_time)
                if facts.biz_step == "departing":
                    # Gone from here: it stands nowhere until it arrives somewhere, so the periodic
                    # dwell check does not count a moving train as standing at its last stop.
                    changes["located_since"] = None
            state = replace(state, **changes)
        result.units[state.number] = state
    return result


def _over(rules: Rules, kind: RuleKind, duration: timedelta) -> bool:
    hours = rules.number(kind, "hours")
    return rules.on(kind) and hours is not None and duration > timedelta(hours=float(hours))


def _hours(duration: timedelta) -> str:
    return str((Decimal(duration.total_seconds()) / 3600).quantize(Decimal("0.1")))


def _reach_stop(rules: Rules, reference: str, result: Assessment, facts: EventFacts) -> None:
    for index, stop in enumerate(result.stops):
        if stop.locode != facts.locode:
            continue
        if stop.actual_arrival is None:
            result.stops[index] = replace(stop, actual_arrival=facts.event_time)
            if stop.planned_arrival is not None and _over(rules, RuleKind.LATE_ARRIVAL,
                                                          facts.event_time - stop.planned_arrival):
                late = facts.event_time - stop.planned_arrival
                result.alerts.append(Alert(
                    RuleKind.LATE_ARRIVAL, f"stop{index}:{stop.locode}", None,
                    f"Consignment {reference} reached {stop.locode} {_hours(late)} hours later than planned.",
                    {"location": stop.locode, "planned_arrival": stop.planned_arrival,
                     "actual_arrival": facts.event_time, "hours_late": _hours(late)}))
            return
        if stop.actual_departure is None:
            if facts.biz_step == "departing":
                result.stops[index] = replace(stop, actual_departure=facts.event_time)
            return


def _seal(rules: Rules, reference: str, result: Assessment, state: UnitState, facts: EventFacts,
          final: str | None) -> UnitState:
    reading = facts.seal
    if reading is not None:
        if state.seal_number and reading.number != state.seal_number and rules.on(RuleKind.SEAL_CHANGED):
            result.alerts.append(Alert(
                RuleKind.SEAL_CHANGED, f"{state.number}:{state.seal_number}>{reading.number}", state.number,
                f"The seal of {state.number} (consignment {reference}) changed from {state.seal_number} "
                f"to {reading.number}.", {"from": state.seal_number, "to": reading.number,
                                          "event_time": facts.event_time}))
        state = replace(state, seal_number=reading.number, seal_kind=reading.kind,
                        seal_broken=reading.broken or (state.seal_broken and reading.number == state.seal_number))
        if reading.broken:
            _broken(rules, reference, result, state, facts, "reported broken")
    elif facts.disposition == "container_open" and state.seal_number and facts.locode != final:
        # Opened before its destination: the seal cannot be intact any more.
        state = replace(state, seal_broken=True)
        _broken(rules, reference, result, state, facts, "opened before its destination")
    return state


def _broken(rules: Rules, reference: str, result: Assessment, state: UnitState, facts: EventFacts,
            how: str) -> None:
    if rules.on(RuleKind.SEAL_BROKEN):
        result.alerts.append(Alert(
            RuleKind.SEAL_BROKEN, f"{state.number}:{state.seal_number}", state.number,
            f"Seal {state.seal_number} of {state.number} (consignment {reference}) was {how}"
            + (f" at {facts.locode}." if facts.locode else "."),
            {"seal": state.seal_number, "location": facts.locode, "event_time": facts.event_time}))


def _temperature_check(rules: Rules, reference: str, result: Assessment, state: UnitState,
                       facts: EventFacts, temperature_range: tuple[Decimal | None, Decimal | None]) -> None:
    if not rules.on(RuleKind.TEMPERATURE) or not facts.temperatures:
        return
    low = temperature_range[0] if temperature_range[0] is not None else rules.number(RuleKind.TEMPERATURE, "min_c")
    high = temperature_range[1] if temperature_range[1] is not None else rules.number(RuleKind.TEMPERATURE, "max_c")
    if low is None and high is None:
        return
    tolerance = rules.number(RuleKind.TEMPERATURE, "tolerance_c") or Decimal(0)
    for moment, value in facts.temperatures:
        if (low is not None and value < low - tolerance) or (high is not None and value > high + tolerance):
            result.alerts.append(Alert(
                RuleKind.TEMPERATURE, f"{state.number}", state.number,
                f"{state.number} of consignment {reference} measured {value} °C, outside "
                f"{low if low is not None else '-∞'} to {high if high is not None else '∞'} °C.",
                {"celsius": str(value), "min": None if low is None else str(low),
                 "max": None if high is None else str(high), "time": moment}))
            return


@dataclass(frozen=True)
class Eta:
    planned: datetime | None          # planned arrival at the final destination
    estimated: datetime | None        # the plan shifted by the delay at the last stop reached
    arrived: datetime | None
    delay_minutes: int | None


def eta(stops: Sequence[StopState]) -> Eta:
    if not stops:
        return Eta(None, None, None, None)
    final = stops[-1]
    delay: timedelta | None = None
    for stop in stops:
        if stop.actual_arrival is not None and stop.planned_arrival is not None:
            delay = stop.actual_arrival - stop.planned_arrival
    minutes = int(delay.total_seconds() // 60) if delay is not None else None
    if final.actual_arrival is not None:
        return Eta(final.planned_arrival, final.actual_arrival, final.actual_arrival, minutes)
    estimated = final.planned_arrival + delay if final.planned_arrival and delay is not None else final.planned_arrival
    return Eta(final.planned_arrival, estimated, None, minutes)


# --- bulk capture files ---------------------------------------------------------------------------

DEFAULT_CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
DOCUMENT_TYPES = ("EPCISDocument", "EPCISQueryDocument")


@dataclass(frozen=True)
class Batch:
    """Lines `first`..`last` of a bulk file, as one document to capture, or the problem that
    keeps them from being one. `event_lines`: for bare events that we put into an EPCISDocument,
    the line of each event of the document."""

    first: int
    last: int
    document: dict | None
    problem: str | None = None
    event_lines: tuple[int, ...] = ()


def wrap_events(events: list[dict], created: datetime) -> dict:
    """Bare events (NDJSON lines without a document around them) as an EPCIS 2.0 document."""
    return {"@context": [DEFAULT_CONTEXT, {"tw": TW_NAMESPACE}], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "epcisBody": {"eventList": events}}


def ndjson_batches(lines: Sequence[tuple[int, str]] | Any, created: datetime, batch_size: int = 500) -> Any:
    """Documents from NDJSON lines (number, text): a line that is an EPCIS document (or an event
    with its own @context) is captured as it is; runs of bare events are wrapped, `batch_size` at
    a time."""
    pending: list[dict] = []
    pending_lines: list[int] = []
    first = last = 0
    for number, text in lines:
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            if pending:
                yield Batch(first, last, wrap_events(pending, created), event_lines=tuple(pending_lines))
                pending, pending_lines = [], []
            yield Batch(number, number, None, f"not JSON: {exc}")
            continue
        bare = isinstance(value, Mapping) and value.get("type") not in DOCUMENT_TYPES and "@context" not in value
        if not bare and pending:
            yield Batch(first, last, wrap_events(pending, created), event_lines=tuple(pending_lines))
            pending, pending_lines = [], []
        if not bare:
            if isinstance(value, Mapping):
                yield Batch(number, number, dict(value))
            else:
                yield Batch(number, number, None, "a line is a JSON object: an EPCIS document or an event")
            continue
        if not pending:
            first = number
        pending.append(dict(value))
        pending_lines.append(number)
        last = number
        if len(pending) >= batch_size:
            yield Batch(first, number, wrap_events(pending, created), event_lines=tuple(pending_lines))
            pending, pending_lines = [], []
    if pending:
        yield Batch(first, last, wrap_events(pending, created), event_lines=tuple(pending_lines))
