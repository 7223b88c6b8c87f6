"""Logistics business actions: report a consignment, capture EPCIS events (which keep containment,
positions and seals up to date and run the monitoring rules), query events, follow a consignment
or a container, keep the monitoring rules. Each write runs in one transaction with its audit
record and outbox events; alerts become notifications to the trader, the carriers and customs.

Who may do what:
- carriers and forwarders report consignments (they become the consignment's forwarder);
- carriers, logistics companies, traders and customs capture events;
- a consignment, its timeline and its alerts are seen by its parties (trader, forwarder, carriers),
  brokers the trader authorised, and officers; an event by whoever captured it, the parties of the
  consignments it concerns, and officers;
- customs keeps the monitoring rules."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    String,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row

from tradewindow.logistics import model
from tradewindow.logistics.model import EventFacts, RuleKind, StopState, UnitState
from tradewindow.logistics.schema import current_schema
from tradewindow.logistics.tables import (
    consignment_legs,
    consignment_parties,
    consignments,
    containment,
    epcis_captures,
    epcis_events,
    equipment,
    monitoring_alerts,
    monitoring_rules,
    route_stops,
    seals,
    tracked_events,
)
from tradewindow.platform import codelists
from tradewindow.platform.auth import SYSTEM, Actor, Role
from tradewindow.platform.bulk import array_text, cycle_collection_paused, insert_rows
from tradewindow.platform.db import UnitOfWork, rows_keyed_by, utcnow
from tradewindow.platform.errors import Conflict, Problem, Problems, ValidationFailed, not_found, require
from tradewindow.platform.ids import new_id, new_ids
from tradewindow.platform.jobs import periodic
from tradewindow.registry import service as registry

REPORTERS = (Role.CARRIER,)
CAPTURERS = (Role.CARRIER, Role.LOGISTICS, Role.TRADER, Role.CUSTOMS, Role.ADMIN)
RULE_KEEPERS = (Role.CUSTOMS, Role.ADMIN)
DEFAULT_CONTEXT = model.DEFAULT_CONTEXT
CHUNK = 500
# Events applied to state read for them at once (containment, equipment): bounds what a capture holds.
APPLY_CHUNK = 2000
# EPCs looked up in one scan of a GIN index: its cost grows faster than the number of keys.
GIN_KEYS = 500


def _visible_parties(uow: UnitOfWork, actor: Actor) -> list[str] | None:
    """The enterprises whose consignments the actor sees; None: all (officers, administrators)."""
    return registry.own_scope(uow, actor)


def _visible_consignments(parties: list[str]) -> Any:
    return select(consignment_parties.c.consignment_id).where(consignment_parties.c.enterprise_id.in_(parties))


# --- consignments ---------------------------------------------------------------------------------

class Lookups:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self._locations = codelists.codes(uow.conn, "location")

    def enterprise(self, uscc: str) -> tuple[str, frozenset[str]] | None:
        found = registry.enterprise_by_uscc(self.uow, uscc)
        if found is None or found["status"] != "active":
            return None
        return found["id"], frozenset(found["kinds"])

    def is_location(self, locode: str) -> bool:
        return locode in self._locations


@dataclass(frozen=True)
class Registered:
    consignment: dict
    created: bool


def register_consignment(uow: UnitOfWork, actor: Actor, raw: object) -> Registered:
    """A carrier reports a consignment: its legs and planned route, its equipment and seals. The
    same client reference again returns the first consignment."""
    require(actor.is_(*REPORTERS) and actor.enterprise_id is not None, "role_not_allowed",
            "Consignments are reported by carriers and forwarders.")
    reference = raw.get("client_reference") if isinstance(raw, Mapping) else None
    if isinstance(reference, str) and (done := _by_reference(uow, actor, reference.strip())):
        return Registered(done, created=False)
    try:
        with uow.transaction():
            return Registered(_register(uow, actor, raw), created=True)
    except Conflict:
        if isinstance(reference, str) and (done := _by_reference(uow, actor, reference.strip())):
            return Registered(done, created=False)
        raise


def _by_reference(uow: UnitOfWork, actor: Actor, reference: str) -> dict | None:
    with uow.read() as conn:
        found = conn.execute(select(consignments.c.id).where(
            consignments.c.forwarder_id == actor.enterprise_id,
            consignments.c.client_reference == reference)).scalar()
        return _view(uow, found) if found else None


def _register(uow: UnitOfWork, actor: Actor, raw: object) -> dict:
    conn = uow.conn
    plan, problems = model.check_consignment(raw, Lookups(uow), actor.enterprise_id)
    if plan is None:
        problems.raise_if_any()
    assert plan is not None
    if conn.execute(select(consignments.c.id).where(
            consignments.c.forwarder_id == actor.enterprise_id,
            consignments.c.transport_document == plan.transport_document)).first():
        raise Conflict([Problem("transport_document", "duplicate_transport_document",
                                f"You already reported a consignment under {plan.transport_document}.")])
    consignment_id = new_id()
    now = utcnow()
    conn.execute(insert(consignments).values(
        id=consignment_id, forwarder_id=actor.enterprise_id, client_reference=plan.client_reference,
        transport_document=plan.transport_document, trader_id=plan.trader_id, description=plan.description,
        status="planned", temperature_min=_text(plan.temperature_min), temperature_max=_text(plan.temperature_max),
        created_at=now, created_by=actor.user_id))
    parties = {(plan.trader_id, "trader"), (actor.enterprise_id, "forwarder")}
    parties |= {(leg.carrier_id, "carrier") for leg in plan.legs}
    conn.execute(insert(consignment_parties), [
        {"consignment_id": consignment_id, "enterprise_id": e, "role": r} for e, r in sorted(parties)])
    conn.execute(insert(consignment_legs), [
        {"consignment_id": consignment_id, "seq": i, "mode": leg.mode.value, "carrier_id": leg.carrier_id,
         "stops": [{"locode": s.locode, "planned_arrival": _iso(s.planned_arrival),
                    "planned_departure": _iso(s.planned_departure)} for s in leg.stops]}
        for i, leg in enumerate(plan.legs)])
    conn.execute(insert(route_stops), [
        {"consignment_id": consignment_id, "seq": i, "locode": s.locode, "planned_arrival": s.planned_arrival,
         "planned_departure": s.planned_departure, "actual_arrival": None, "actual_departure": None}
        for i, s in enumerate(plan.route)])
    for unit in plan.equipment:
        unit_id = new_id()
        first_seal = unit.seals[0] if unit.seals else None
        conn.execute(insert(equipment).values(
            id=unit_id, consignment_id=consignment_id, kind=unit.kind.value, number=unit.number, epc=unit.epc,
            carried_on=unit.carried_on, seal_number=first_seal.number if first_seal else None,
            seal_kind=first_seal.kind.value if first_seal else None, seal_broken=False,
            locode=None, located_since=None, last_event_time=None))
        for seal in unit.seals:
            conn.execute(insert(seals).values(id=new_id(), equipment_id=unit_id, number=seal.number,
                                              kind=seal.kind.value, status="intact", recorded_at=now,
                                              event_pk=None))
    # Events captured before the consignment was reported may have packed its equipment already
    # (on PostgreSQL `_rows_naming_any` finds every row of the events naming it: the row's own
    # list says which holds it).
    epcs = {unit.epc for unit in plan.equipment}
    holding = [row.id for row in _rows_naming_any(conn, epcs, containment.c.id, containment.c.children,
                                                  where=[containment.c.holds_equipment.is_(False)])
               if not epcs.isdisjoint(row.children)]
    if holding:
        conn.execute(update(containment).where(containment.c.id == bindparam("holding"))
                     .values(holds_equipment=True), [{"holding": pk} for pk in holding])
    view = _view(uow, consignment_id)
    uow.audit(actor, "logistics.consignment_reported", "consignment", consignment_id, None,
              {"transport_document": plan.transport_document, "trader_id": plan.trader_id,
               "legs": len(plan.legs), "equipment": [u.number for u in plan.equipment]})
    uow.emit("logistics.consignment_reported", "consignment", consignment_id,
             {"transport_document": plan.transport_document, "forwarder_id": actor.enterprise_id},
             owner_enterprise_id=plan.trader_id)
    return view


def get_consignment(uow: UnitOfWork, actor: Actor, consignment_id: str) -> dict:
    with uow.read():
        _require_visible(uow, actor, consignment_id)
        return _view(uow, consignment_id)


def list_consignments(uow: UnitOfWork, actor: Actor, status: str | None = None, q: str | None = None,
                      limit: int = 50, offset: int = 0) -> dict:
    with uow.read() as conn:
        query = select(consignments)
        parties = _visible_parties(uow, actor)
        if parties is not None:
            query = query.where(consignments.c.id.in_(_visible_consignments(parties)))
        if status:
            query = query.where(consignments.c.status == status)
        if q:
            text = q.strip().upper()
            on_equipment = select(equipment.c.consignment_id).where(equipment.c.number == model.compact(text))
            query = query.where(or_(consignments.c.transport_document.ilike(f"%{_escape_like(q.strip())}%",
                                                                            escape="\\"),
                                    consignments.c.id.in_(on_equipment)))
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(query.order_by(consignments.c.id.desc()).limit(limit).offset(offset)).mappings().all()
        return {"items": [_view(uow, r["id"]) for r in rows], "total": total, "limit": limit, "offset": offset}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _require_visible(uow: UnitOfWork, actor: Actor, consignment_id: str) -> None:
    parties = _visible_parties(uow, actor)
    query = select(consignments.c.id).where(consignments.c.id == consignment_id)
    if parties is not None:
        query = query.where(consignments.c.id.in_(_visible_consignments(parties)))
    if uow.conn.execute(query).first() is None:
        raise not_found("consignment", consignment_id)


def _view(uow: UnitOfWork, consignment_id: str) -> dict:
    conn = uow.conn
    row = conn.execute(select(consignments).where(consignments.c.id == consignment_id)).mappings().one()
    legs = conn.execute(select(consignment_legs).where(consignment_legs.c.consignment_id == consignment_id)
                        .order_by(consignment_legs.c.seq)).mappings().all()
    stops = _stops(uow, consignment_id)
    units = conn.execute(select(equipment).where(equipment.c.consignment_id == consignment_id)
                         .order_by(equipment.c.number)).mappings().all()
    ids = {row["trader_id"], row["forwarder_id"], *(leg["carrier_id"] for leg in legs)}
    names = _enterprise_names(uow, ids)
    eta = model.eta(stops)
    return {
        "id": row["id"], "client_reference": row["client_reference"],
        "transport_document": row["transport_document"], "description": row["description"],
        "status": row["status"], "trader": names[row["trader_id"]], "forwarder": names[row["forwarder_id"]],
        "temperature": None if row["temperature_min"] is None else {"min": row["temperature_min"],
                                                                   "max": row["temperature_max"]},
        "legs": [{"seq": leg["seq"], "mode": leg["mode"], "carrier": names[leg["carrier_id"]],
                  "route": [{"location": s["locode"], "planned_arrival": s["planned_arrival"],
                             "planned_departure": s["planned_departure"]} for s in leg["stops"]]}
                 for leg in legs],
        "route": [{"seq": i, "location": s.locode, "planned_arrival": s.planned_arrival,
                   "planned_departure": s.planned_departure, "actual_arrival": s.actual_arrival,
                   "actual_departure": s.actual_departure} for i, s in enumerate(stops)],
        "equipment": [_unit_view(u) for u in units],
        "eta": {"planned": eta.planned, "estimated": eta.estimated, "arrived": eta.arrived,
                "delay_minutes": eta.delay_minutes},
        "created_at": row["created_at"],
    }


def _unit_view(row: Mapping[str, Any]) -> dict:
    return {"id": row["id"], "kind": row["kind"], "number": row["number"], "epc": row["epc"],
            "carried_on": row["carried_on"],
            "seal": None if row["seal_number"] is None else {
                "number": row["seal_number"], "kind": row["seal_kind"],
                "status": "broken" if row["seal_broken"] else "intact"},
            "location": row["locode"], "located_since": row["located_since"],
            "last_event_time": row["last_event_time"]}


def _enterprise_names(uow: UnitOfWork, ids: Iterable[str]) -> dict[str, dict]:
    names = {}
    for enterprise_id in ids:
        found = registry.enterprise_by_uscc(uow, enterprise_id)
        names[enterprise_id] = {"id": enterprise_id, "uscc": found["uscc"] if found else None,
                                "name": (found["name_en"] or found["name_zh"]) if found else None}
    return names


def _stops(uow: UnitOfWork, consignment_id: str) -> list[StopState]:
    rows = uow.conn.execute(select(route_stops).where(route_stops.c.consignment_id == consignment_id)
                            .order_by(route_stops.c.seq)).mappings()
    return [_stop_state(r) for r in rows]


def _stop_state(row: Mapping[str, Any]) -> StopState:
    return StopState(row["locode"], row["planned_arrival"], row["planned_departure"], row["actual_arrival"],
                     row["actual_departure"])


# --- EPCIS capture --------------------------------------------------------------------------------

@dataclass
class _Tracked:
    """One consignment's monitoring state during a capture."""

    head: dict
    stops: list[StopState]
    units: dict[str, dict]          # equipment rows by number
    status: str
    stops_changed: bool = False
    changed_units: set[str] = field(default_factory=set)
    # Read once from `head` and `units` (neither changes during a capture): the temperature
    # range, and the numbers each wagon, barge or flight carries.
    temperature: tuple[Decimal | None, Decimal | None] = (None, None)
    carrying: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.temperature = (model.parse_number(self.head["temperature_min"]),
                            model.parse_number(self.head["temperature_max"]))
        for number, unit in self.units.items():
            if unit["carried_on"] is not None:
                self.carrying.setdefault(unit["carried_on"], set()).add(number)


@dataclass(slots=True)
class _Contained:
    """One child's containment as a capture sees it: read from the database (`id`: its stored
    row, which holds the other children of the same aggregation too) or added by the capture (its
    row made when it is written); `closed`: its `until` was set by the capture."""

    id: str | None
    parent_epc: str
    child_epc: str
    since: datetime
    until: datetime | None
    event_pk: str
    closed: bool = False


@dataclass
class _Capture:
    """What a capture has read and changed, so that each fact is read once, set-based, and
    written once: the consignments it touches, the containment rows and equipment the events
    name (loaded per chunk of events before they are applied), and the rows to write."""

    rules: model.Rules
    consignments: dict[str, _Tracked] = field(default_factory=dict)
    links: list[tuple] = field(default_factory=list)          # LINK_COLUMNS
    seals: list[tuple] = field(default_factory=list)          # SEAL_COLUMNS
    raised: set[tuple[str, str, str]] = field(default_factory=set)
    contained: dict[str, list[_Contained]] = field(default_factory=dict)      # read from the database, by row
    added: list[_Contained] = field(default_factory=list)                      # added by the capture
    by_parent: dict[str, list[_Contained]] = field(default_factory=lambda: defaultdict(list))
    by_child: dict[str, list[_Contained]] = field(default_factory=lambda: defaultdict(list))
    # The rows of by_parent whose child is known to be equipment: what monitoring follows.
    units_inside: dict[str, list[_Contained]] = field(default_factory=lambda: defaultdict(list))
    # Equipment rows (consignment_id, number, epc) by EPC, of the EPCs looked up so far that are
    # equipment (its keys: the capture's set of known equipment EPCs); every EPC looked up so far.
    units_by_epc: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    looked_up: set[str] = field(default_factory=set)

    def load_many(self, uow: UnitOfWork, consignment_ids: Iterable[str]) -> None:
        """Read the consignments not read yet (their heads, equipment and stops) in three
        queries for all rather than three each."""
        missing = sorted(set(consignment_ids) - self.consignments.keys())
        conn = uow.conn
        for start in range(0, len(missing), CHUNK):
            ids = missing[start:start + CHUNK]
            heads = {r.id: dict(r._mapping) for r in rows_keyed_by(conn, consignments, consignments.c.id, ids)}
            units: dict[str, dict[str, dict]] = {i: {} for i in ids}
            # Not indexed by consignment (a small table): hashed, not probed.
            for r in rows_keyed_by(conn, equipment, equipment.c.consignment_id, ids, probe=False):
                units[r.consignment_id][r.number] = dict(r._mapping)
            stops: dict[str, list[StopState]] = {i: [] for i in ids}
            for r in sorted(rows_keyed_by(conn, route_stops, route_stops.c.consignment_id, ids),
                            key=lambda r: (r.consignment_id, r.seq)):
                stops[r.consignment_id].append(_stop_state(r._mapping))
            for consignment_id in ids:
                head = heads[consignment_id]
                self.consignments[consignment_id] = _Tracked(head, stops[consignment_id], units[consignment_id],
                                                             head["status"])

    def load(self, uow: UnitOfWork, consignment_id: str) -> _Tracked:
        if consignment_id not in self.consignments:
            conn = uow.conn
            head = dict(conn.execute(select(consignments).where(consignments.c.id == consignment_id)).mappings().one())
            units = {r["number"]: dict(r) for r in conn.execute(
                select(equipment).where(equipment.c.consignment_id == consignment_id)).mappings()}
            self.consignments[consignment_id] = _Tracked(head, _stops(uow, consignment_id), units, head["status"])
        return self.consignments[consignment_id]

    def prepare(self, conn: Any, facts: Sequence[EventFacts]) -> None:
        """Read, in a few set-based queries, everything applying `facts` will look at (besides
        what `load_holding` read): the open containment rows of every parent one empties, the
        equipment found inside what the events name at any moment of theirs (each event then picks
        its own), and which of all these EPCs are equipment."""
        emptying: set[str] = set()
        named: set[str] = set()                              # every EPC the facts name, children too
        carried: dict[str, set[str]] = defaultdict(set)      # parent -> children the facts add
        for fact in facts:
            named.update(epc for epc, _ in fact.epcs)
            parent = fact.parent
            if fact.type != "AggregationEvent" or parent is None:
                continue
            if fact.action == "DELETE":
                emptying.add(parent)
            else:
                carried[parent].update(fact.epcs_in("child"))
        open_rows = containment.c.until.is_(None)
        self._add_stored(rows_keyed_by(conn, containment, containment.c.parent_epc, emptying, where=[open_rows]))
        self._look_up_units(conn, named)
        # Only what was inside while these events happened: a wagon's trains of past years stay unread.
        first, last = min(f.event_time for f in facts), max(f.event_time for f in facts)
        during = and_(containment.c.since <= last, or_(containment.c.until.is_(None), containment.c.until > first))
        carried_units = {p: units for p, children in carried.items() if (units := children & self.units_by_epc.keys())}
        frontier, seen = set(named), set(named)
        while frontier:
            found: set[str] = set()
            rows = list(rows_keyed_by(conn, containment, containment.c.parent_epc, frontier,
                                      where=[containment.c.holds_equipment, during]))
            self._add_stored(rows)
            found.update(c for r in rows for c in r.children)
            self._look_up_units(conn, found)
            found = self.units_by_epc.keys() & found
            for parent in frontier & carried_units.keys():
                found |= carried_units[parent]       # looked up already: among `named`
            frontier = found - seen
            seen |= found

    def load_holding(self, conn: Any, facts: Iterable[EventFacts]) -> None:
        """Read the open containment rows of every child the aggregations of `facts` add (to take
        it out of where it was): before the capture stores its own events, which name them too."""
        adding = {child for fact in facts if fact.type == "AggregationEvent" and fact.action != "DELETE"
                  and fact.parent is not None for child in fact.epcs_in("child")}
        open_rows = containment.c.until.is_(None)
        self._add_stored(_rows_naming_any(conn, adding, where=[open_rows]))

    def _add_stored(self, rows: Iterable[Row]) -> None:
        for row in rows:
            if row.id not in self.contained:
                children = [_Contained(row.id, row.parent_epc, child, row.since, row.until, row.event_pk)
                            for child in row.children]
                self.contained[row.id] = children
                for stored in children:
                    self._index(stored)

    def _index(self, row: _Contained) -> None:
        self.by_parent[row.parent_epc].append(row)
        self.by_child[row.child_epc].append(row)
        if row.child_epc in self.units_by_epc:
            self.units_inside[row.parent_epc].append(row)

    def _look_up_units(self, conn: Any, epcs: set[str]) -> None:
        missing = epcs - self.looked_up
        self.looked_up |= missing
        # Equipment is a small table looked up by every EPC a document names: hashed, not probed.
        for consignment_id, number, epc in rows_keyed_by(conn, equipment, equipment.c.epc, missing,
                                                         equipment.c.consignment_id, equipment.c.number,
                                                         equipment.c.epc, probe=False):
            if epc not in self.units_by_epc:
                self.units_by_epc[epc] = []
                for row in self.by_child.get(epc, ()):       # indexed before it was known as equipment
                    self.units_inside[row.parent_epc].append(row)
            self.units_by_epc[epc].append((consignment_id, number, epc))

    def contain(self, pk: str, fact: EventFacts) -> None:
        """Keep what is packed in what: ADD puts the children in the parent (taking them out of any
        other), DELETE takes them (or, with none named, everything) out, OBSERVE confirms."""
        parent = fact.parent
        children = fact.epcs_in("child")
        if parent is None:
            return
        if fact.action == "DELETE":
            named = set(children)
            for row in self.by_parent.get(parent, ()):
                if row.until is None and (not children or row.child_epc in named):
                    row.until, row.closed = fact.event_time, True
            return
        by_child, units, added_rows = self.by_child, self.units_by_epc, self.added
        siblings, since = self.by_parent[parent], fact.event_time
        for child in children:            # self._index(added) written out: a bag holds many parcels
            known = by_child.get(child)
            if known:
                current = [row for row in known if row.until is None]
                if any(row.parent_epc == parent for row in current):
                    continue
                if fact.action == "ADD":
                    for row in current:
                        row.until, row.closed = since, True
            added = _Contained(None, parent, child, since, None, pk)
            added_rows.append(added)
            siblings.append(added)
            if known is None:
                by_child[child] = [added]
            else:
                known.append(added)
            if child in units:
                self.units_inside[parent].append(added)

    def contents(self, epcs: set[str], at: datetime) -> set[str]:
        """The transport equipment inside `epcs` at the moment `at` (a container on a wagon, and
        what that carries): what monitoring follows, without walking through every parcel."""
        found: set[str] = set()
        frontier = set(epcs)
        for _ in range(6):
            if not frontier:
                break
            inside = {row.child_epc for parent in frontier & self.units_inside.keys()
                      for row in self.units_inside[parent] if row.since <= at and (row.until is None or row.until > at)}
            frontier = inside - found - epcs
            found |= frontier
        return found

    def containment_rows(self, conn: Any) -> tuple[list[tuple], list[dict]]:
        """(rows to insert, as CONTAINMENT_COLUMNS; {row_id, row_children, row_until,
        row_holds_equipment} of stored rows the capture changed). The children an event added
        that leave together stay one row; a stored row whose children now leave at different
        times is split: it keeps the children of its first `until` (in its own order), the others
        go to new rows. A row holds equipment when one of its children is known equipment (every
        child the capture added was looked up with its events; a split row's are looked up here)."""
        groups: dict[tuple, list[str]] = {}
        for r in self.added:
            groups.setdefault((r.event_pk, r.parent_epc, r.since, r.until), []).append(r.child_epc)
        changed: list[dict] = []
        for row_id, children in self.contained.items():
            if not any(c.closed for c in children):
                continue
            parts: dict[datetime | None, list[str]] = {}
            for c in children:
                parts.setdefault(c.until, []).append(c.child_epc)
            first, *others = parts.items()
            changed.append({"row_id": row_id, "row_children": first[1], "row_until": first[0]})
            head = children[0]
            for until, epcs in others:
                groups.setdefault((head.event_pk, head.parent_epc, head.since, until), []).extend(epcs)
        self._look_up_units(conn, {child for row in changed for child in row["row_children"]})
        units = self.units_by_epc.keys()
        for row in changed:
            row["row_holds_equipment"] = not units.isdisjoint(row["row_children"])
        added = [(row_id, parent, children, since, until, event_pk, not units.isdisjoint(children))
                 for row_id, ((event_pk, parent, since, until), children)
                 in zip(new_ids(len(groups)), groups.items(), strict=True)]
        return added, changed


CONTAINMENT_COLUMNS = ("id", "parent_epc", "children", "since", "until", "event_pk", "holds_equipment")


def capture(uow: UnitOfWork, actor: Actor, document: object) -> dict:
    """Capture an EPCIS 2.0 document (or one event with its @context). Refused whole, with every
    schema error, when the schema refuses it; otherwise every event is stored as sent. An event
    whose eventID (or, without one, whose hash) is already stored is a repeat and is skipped."""
    require(actor.is_(*CAPTURERS), "role_not_allowed",
            "Events are captured by carriers, logistics companies, traders and customs.")
    with cycle_collection_paused():
        facts = check_document(document)
        assert isinstance(document, Mapping)
        try:
            with uow.transaction():
                return _store(uow, actor, document, facts)
        except Conflict:
            # A concurrent capture stored some of the same events first: the repeat skips them.
            with uow.transaction():
                return _store(uow, actor, document, facts)


def check_document(document: object) -> list[EventFacts]:
    """The facts of every event of a document the schema accepts; ValidationFailed otherwise."""
    if not isinstance(document, Mapping):
        raise ValidationFailed("An EPCIS document is a JSON object.", "not_an_object")
    schema = current_schema()
    if problems := schema.problems(document):
        raise ValidationFailed(problems)
    found = Problems()
    facts = []
    for index, event in enumerate(model.events_of(document)):
        read = model.event_facts(event, model.event_list_path(document, index), found)
        if read is not None:
            facts.append(read)
    found.raise_if_any()
    return facts


def _store(uow: UnitOfWork, actor: Actor, document: Mapping[str, Any], facts: list[EventFacts]) -> dict:
    """Store a document's events set-based: one lookup for the ids already stored, the new events
    and their identifiers written in bulk (COPY on PostgreSQL), then the events applied in event
    time order, a chunk at a time, to state read for the whole chunk at once (`_Capture.prepare`),
    and what changed written back once (`_flush`)."""
    conn = uow.conn
    now = utcnow()
    known: set[str] = {row[0] for row in rows_keyed_by(conn, epcis_events, epcis_events.c.event_id,
                                                      [f.event_id for f in facts], epcis_events.c.event_id)}
    new: list[tuple[EventFacts, dict]] = []
    for fact, event in zip(facts, model.events_of(document), strict=True):
        if fact.event_id in known:
            continue
        known.add(fact.event_id)
        new.append((fact, event))
    fresh = [(pk, fact, event) for pk, (fact, event) in zip(new_ids(len(new)), new, strict=True)]
    capture_id = new_id()
    conn.execute(insert(epcis_captures).values(
        id=capture_id, captured_by=actor.enterprise_id, user_id=actor.user_id, captured_at=now,
        context=document.get("@context"), event_count=len(facts), new_count=len(fresh)))
    if fresh:
        state = _Capture(effective_rules(uow))
        state.load_holding(conn, (fact for _, fact, _ in fresh))
        insert_rows(conn, epcis_events, EVENT_COLUMNS,
                    [_event_row(pk, f, e, capture_id, actor, now) for pk, f, e in fresh])
        ordered = sorted(((pk, fact) for pk, fact, _ in fresh), key=lambda item: (item[1].event_time, item[0]))
        for start in range(0, len(ordered), APPLY_CHUNK):
            chunk = ordered[start:start + APPLY_CHUNK]
            state.prepare(conn, [fact for _, fact in chunk])
            state.load_many(uow, {c for units in state.units_by_epc.values() for c, _, _ in units})
            for pk, fact in chunk:
                if fact.type == "AggregationEvent":
                    state.contain(pk, fact)
                _track(uow, state, pk, fact)
        _flush(uow, state)
    uow.audit(actor, "logistics.events_captured", "epcis_capture", capture_id, None,
              {"events": len(facts), "new": len(fresh)})
    uow.emit("logistics.events_captured", "epcis_capture", capture_id,
             {"events": len(facts), "new": len(fresh)}, owner_enterprise_id=actor.enterprise_id)
    return {"capture_id": capture_id, "events": len(facts), "captured": len(fresh),
            "repeated": len(facts) - len(fresh), "event_ids": [f.event_id for f in facts]}


def _rows_naming_any(conn: Any, epcs: Iterable[str], *columns: Any, where: Sequence[Any] = ()) -> Iterator[Row]:
    """The containment rows (`columns` of each, all when none are named) meeting `where` that
    may hold one of `epcs` among their children. On PostgreSQL every row of the aggregation events
    naming one, found by the GIN index of their EPC lists (GIN_KEYS EPCs a scan), each event's rows
    then probed by `rows_keyed_by` (an event's rows may hold other children: each row's own list
    says); elsewhere exactly the rows holding one, found by reading the rows' lists."""
    distinct = set(epcs)
    if not distinct:
        return
    if conn.dialect.name == "postgresql":
        values = list(distinct)      # unsorted: each key is its own descent of the index anyway
        naming: set[str] = set()
        # Compared row by row, `lists && many` costs the product of their lengths: the planner,
        # which cannot know that, may prefer reading a small table whole. Only the index scan (a
        # failure ends the transaction, and the setting with it).
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for start in range(0, len(values), GIN_KEYS):
            naming.update(conn.execute(_AGGREGATIONS_NAMING, {"epcs": array_text(values[start:start + GIN_KEYS])})
                          .scalars())
        conn.exec_driver_sql("SET LOCAL enable_seqscan TO DEFAULT")
        yield from rows_keyed_by(conn, containment, containment.c.event_pk, naming, *columns, where=where)
        return
    values = sorted(distinct)
    for start in range(0, len(values), CHUNK):
        chunk = values[start:start + CHUNK]
        yield from conn.execute(select(*(columns or containment.c)).where(
            _any_element(containment.c.children, lambda value, chunk=chunk: value.in_(chunk)), *where))


def _any_element(column: Any, condition: Any) -> Any:
    """Some element of a JSON list column (SQLite) meets `condition` (a function of the element)."""
    element = func.json_each(column).table_valued("value").alias("element")
    return exists(select(element.c.value).where(condition(element.c.value)))


# The aggregation events naming any of the EPCs `epcs` (a text[] literal) among their lists, on
# PostgreSQL: built once, as capture runs it a few dozen times a document.
_AGGREGATIONS_NAMING = select(epcis_events.c.pk).where(
    epcis_events.c.event_type == "AggregationEvent",
    epcis_events.c.epcs.op("&&")(func.array(select(func.unnest(cast(
        bindparam("epcs", type_=String()), postgresql.ARRAY(Text)))).scalar_subquery())))


EVENT_COLUMNS = ("pk", "event_id", "event_type", "action", "event_time", "time_zone_offset", "record_time",
                 "biz_step", "disposition", "read_point", "biz_location", "locode", "capture_id", "captured_by", "body",
                 "parent_epc", "epcs")


def _event_row(pk: str, fact: EventFacts, event: Mapping[str, Any], capture_id: str, actor: Actor,
               now: datetime) -> tuple:
    """An epcis_events row, as EVENT_COLUMNS. The event's one list of EPCs, when it is exactly
    the row's `epcs`, is not stored twice: the body holds EPCS_ON_ROW in its place (see _event_out),
    which keeps a bag of parcels' row small."""
    epcs = [epc for epc, role in fact.epcs if role != "parent"]
    body = dict(event)
    listed = [key for key in EPC_LISTS if key in body]
    if len(listed) == 1 and body[listed[0]] == epcs:
        body[listed[0]] = EPCS_ON_ROW
    return (pk, fact.event_id, fact.type[:100], fact.action, fact.event_time,
            (fact.time_zone_offset or "")[:6] or None, now, _cut(fact.biz_step), _cut(fact.disposition),
            _cut(fact.read_point), _cut(fact.biz_location), fact.locode, capture_id, actor.enterprise_id, body,
            fact.parent, epcs)


EPC_LISTS = tuple(key for key, _ in model.EPC_ROLES)
# Stands in a stored body for its list of EPCs, kept on the row: never a list, so never an EPCIS value.
EPCS_ON_ROW = "tw:epcs-on-row"


def _cut(value: str | None) -> str | None:
    return value[:300] if value else value


def _contents(uow: UnitOfWork, epcs: set[str], at: datetime, equipment_only: bool = False) -> set[str]:
    """Everything inside `epcs` at the moment `at` (bags in a container, parcels in the bags).
    With `equipment_only`, only the transport equipment inside (a container on a wagon): what
    monitoring follows, without walking through every parcel of a container."""
    found: set[str] = set()
    frontier = set(epcs)
    for _ in range(6):
        if not frontier:
            break
        inside = {child for row in rows_keyed_by(uow.conn, containment, containment.c.parent_epc, frontier,
                                                 containment.c.children, where=[containment.c.since <= at, or_(
                                                     containment.c.until.is_(None), containment.c.until > at)])
                  for child in row.children}
        if equipment_only and inside:
            inside = {row.epc for row in rows_keyed_by(uow.conn, equipment, equipment.c.epc, inside, equipment.c.epc)}
        frontier = inside - found - epcs
        found |= frontier
    return found


def _track(uow: UnitOfWork, state: _Capture, pk: str, fact: EventFacts) -> None:
    """Link the event to the equipment it concerns and run the monitoring rules for each of their
    consignments (on the capture's in-memory copy of their state; `_flush` writes it back)."""
    direct_epcs = {epc for epc, _ in fact.epcs}
    if not direct_epcs:
        return
    affected = direct_epcs | state.contents(direct_epcs, fact.event_time)
    by_consignment: dict[str, set[str]] = defaultdict(set)
    direct: dict[str, set[str]] = defaultdict(set)
    for epc in affected & state.units_by_epc.keys():
        for consignment_id, number, _ in state.units_by_epc[epc]:
            by_consignment[consignment_id].add(number)
            if epc in direct_epcs:
                direct[consignment_id].add(number)
    for consignment_id, numbers in by_consignment.items():
        tracked = state.load(uow, consignment_id)
        # What a wagon, barge or flight carries goes where it goes.
        numbers |= {n for carrier in numbers & tracked.carrying.keys() for n in tracked.carrying[carrier]}
        _monitor(uow, state, tracked, pk, fact, numbers, direct[consignment_id])


def _monitor(uow: UnitOfWork, state: _Capture, tracked: _Tracked, pk: str, fact: EventFacts,
             numbers: set[str], direct: set[str]) -> None:
    head = tracked.head
    before = {number: _unit_state(tracked.units[number]) for number in sorted(numbers)}
    result = model.assess(state.rules, head["transport_document"], tracked.stops, list(before.values()), direct,
                          fact, tracked.temperature)
    state.links.extend((tracked.units[number]["id"], pk, head["id"], number in direct) for number in before)
    if result.stops != tracked.stops:
        tracked.stops = result.stops
        tracked.stops_changed = True
    for number, new in result.units.items():
        old = before[number]
        if new == old:
            continue
        unit = tracked.units[number]
        unit.update(seal_number=new.seal_number, seal_kind=new.seal_kind, seal_broken=new.seal_broken,
                    locode=new.locode, located_since=new.located_since, last_event_time=new.last_event_time)
        tracked.changed_units.add(number)
        reported = fact.seal is not None and number in direct and (
            new.seal_number != old.seal_number or new.seal_broken != old.seal_broken)
        if reported or (new.seal_broken and not old.seal_broken):
            state.seals.append((new_id(), unit["id"], new.seal_number, new.seal_kind or "seal",
                                "broken" if new.seal_broken else "intact", fact.event_time, pk))
    status = tracked.status
    if tracked.stops and tracked.stops[-1].actual_arrival is not None:
        status = "arrived"
    elif status == "planned":
        status = "in_transit"
    tracked.status = status
    for alert in result.alerts:
        if (head["id"], alert.kind, alert.key) not in state.raised:
            state.raised.add((head["id"], alert.kind, alert.key))
            _raise_alert(uow, head, pk, alert)


LINK_COLUMNS = ("equipment_id", "event_pk", "consignment_id", "direct")
SEAL_COLUMNS = ("id", "equipment_id", "number", "kind", "status", "recorded_at", "event_pk")
UNIT_STATE = ("seal_number", "seal_kind", "seal_broken", "locode", "located_since", "last_event_time")


def _flush(uow: UnitOfWork, state: _Capture) -> None:
    """Write back what the capture changed, in bulk: containment, links, seals, stops reached,
    equipment state, statuses."""
    conn = uow.conn
    added, closed = state.containment_rows(conn)
    insert_rows(conn, containment, CONTAINMENT_COLUMNS, added)
    if closed:
        conn.execute(update(containment).where(containment.c.id == bindparam("row_id"))
                     .values(children=bindparam("row_children", type_=containment.c.children.type),
                             until=bindparam("row_until"), holds_equipment=bindparam("row_holds_equipment")), closed)
    insert_rows(conn, tracked_events, LINK_COLUMNS, state.links)
    insert_rows(conn, seals, SEAL_COLUMNS, state.seals)
    stops, units = [], []
    for consignment_id, tracked in state.consignments.items():
        if tracked.stops_changed:
            stops.extend({"row_consignment": consignment_id, "row_seq": index, "row_arrival": stop.actual_arrival,
                          "row_departure": stop.actual_departure} for index, stop in enumerate(tracked.stops))
        units.extend({"row_id": tracked.units[n]["id"], **{f"row_{k}": tracked.units[n][k] for k in UNIT_STATE}}
                     for n in sorted(tracked.changed_units))
        if tracked.status != tracked.head["status"]:
            conn.execute(update(consignments).where(consignments.c.id == consignment_id)
                         .values(status=tracked.status))
            uow.emit("logistics.consignment_" + tracked.status, "consignment", consignment_id,
                     {"transport_document": tracked.head["transport_document"]},
                     owner_enterprise_id=tracked.head["trader_id"])
    if stops:
        conn.execute(update(route_stops).where(route_stops.c.consignment_id == bindparam("row_consignment"),
                                               route_stops.c.seq == bindparam("row_seq"))
                     .values(actual_arrival=bindparam("row_arrival"), actual_departure=bindparam("row_departure")),
                     stops)
    if units:
        conn.execute(update(equipment).where(equipment.c.id == bindparam("row_id"))
                     .values({k: bindparam(f"row_{k}") for k in UNIT_STATE}), units)


def _unit_state(row: Mapping[str, Any]) -> UnitState:
    return UnitState(number=row["number"], kind=row["kind"], seal_number=row["seal_number"],
                     seal_kind=row["seal_kind"], seal_broken=row["seal_broken"], locode=row["locode"],
                     located_since=row["located_since"], last_event_time=row["last_event_time"])


def _raise_alert(uow: UnitOfWork, head: Mapping[str, Any], pk: str | None, alert: model.Alert) -> bool:
    """Store and announce an alert, once per consignment, kind and key."""
    conn = uow.conn
    key = alert.key[:200]
    if conn.execute(select(monitoring_alerts.c.id).where(
            monitoring_alerts.c.consignment_id == head["id"], monitoring_alerts.c.kind == alert.kind.value,
            monitoring_alerts.c.dedup_key == key)).first():
        return False
    alert_id = new_id()
    details = _jsonable(alert.details)
    conn.execute(insert(monitoring_alerts).values(
        id=alert_id, consignment_id=head["id"], kind=alert.kind.value, dedup_key=key,
        equipment_number=alert.equipment, event_pk=pk, raised_at=utcnow(), message=alert.message,
        details=details))
    carriers = conn.execute(select(consignment_parties.c.enterprise_id).where(
        consignment_parties.c.consignment_id == head["id"],
        consignment_parties.c.role.in_(("forwarder", "carrier")))).scalars().all()
    uow.emit("logistics.alert_raised", "consignment", head["id"], {
        "number": head["transport_document"], "alert_id": alert_id, "alert_kind": alert.kind.value,
        "equipment": alert.equipment, "details": details,
        "notification": {"code": "logistics.alert_raised", "message": alert.message,
                         "subject_type": "consignment", "subject_id": head["id"],
                         "audiences": sorted(set(carriers))},
    }, owner_enterprise_id=head["trader_id"])
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def check_dwell(uow: UnitOfWork, actor: Actor, now: datetime | None = None) -> int:
    """Raise dwell alerts for equipment that has stood at one place (not its destination) longer
    than the rule allows with no event since: a container nobody reports on is the one to look for.
    Run periodically (the worker or `tradewindow epcis check-dwell`). Returns the alerts raised."""
    require(actor.is_(*RULE_KEEPERS), "role_not_allowed", "Only customs runs the dwell check.")
    now = now or utcnow()
    raised = 0
    with uow.transaction() as conn:
        rules = effective_rules(uow)
        hours = rules.number(RuleKind.DWELL, "hours")
        if not rules.on(RuleKind.DWELL) or hours is None:
            return 0
        rows = conn.execute(select(equipment, consignments.c.status).join(
            consignments, consignments.c.id == equipment.c.consignment_id).where(
            consignments.c.status == "in_transit", equipment.c.located_since.is_not(None))).mappings().all()
        for row in rows:
            stops = _stops(uow, row["consignment_id"])
            stood = now - row["located_since"]
            if not stops or row["locode"] == stops[-1].locode or not model._over(rules, RuleKind.DWELL, stood):
                continue
            head = conn.execute(select(consignments).where(
                consignments.c.id == row["consignment_id"])).mappings().one()
            alert = model.Alert(
                RuleKind.DWELL, f"{row['number']}:{row['locode']}:{row['located_since'].isoformat()}", row["number"],
                f"{row['number']} of consignment {head['transport_document']} has stood at {row['locode']} "
                f"for {model._hours(stood)} hours.",
                {"location": row["locode"], "since": row["located_since"], "hours": model._hours(stood)})
            raised += _raise_alert(uow, head, None, alert)
    return raised


def check_dwell_periodically(uow: UnitOfWork) -> int:
    """The worker's dwell check (every DWELL_CHECK_SECONDS), run with the system's authority."""
    return check_dwell(uow, SYSTEM)


DWELL_CHECK_SECONDS = 600
periodic("logistics.check_dwell", seconds=DWELL_CHECK_SECONDS)(check_dwell_periodically)


# --- monitoring rules and alerts ------------------------------------------------------------------

def effective_rules(uow: UnitOfWork) -> model.Rules:
    rows = uow.conn.execute(select(monitoring_rules)).mappings().all()
    return model.effective_rules(rows)


def list_rules(uow: UnitOfWork, actor: Actor) -> list[dict]:
    with uow.read() as conn:
        stored = {r["kind"]: r for r in conn.execute(select(monitoring_rules)).mappings()}
        result = []
        for kind in RuleKind:
            row = stored.get(kind.value)
            result.append({"kind": kind.value,
                           "params": dict(row["params"]) if row else dict(model.DEFAULT_RULES[kind]),
                           "active": row["active"] if row else True, "default": row is None,
                           "updated_at": row["updated_at"] if row else None,
                           "updated_by": row["updated_by"] if row else None})
        return result


def save_rule(uow: UnitOfWork, actor: Actor, kind: str, params: object, active: bool = True) -> dict:
    """Customs sets a rule's parameters or switches it off; from the next event on it applies."""
    require(actor.is_(*RULE_KEEPERS), "role_not_allowed", "Only customs keeps the monitoring rules.")
    model.check_rule(kind, params).raise_if_any()
    assert isinstance(params, Mapping)
    values = {k: str(v) for k, v in params.items()}
    with uow.transaction() as conn:
        before = conn.execute(select(monitoring_rules).where(monitoring_rules.c.kind == kind)).mappings().first()
        row = {"kind": kind, "params": values, "active": active, "updated_at": utcnow(),
               "updated_by": actor.username}
        if before is None:
            conn.execute(insert(monitoring_rules).values(row))
        else:
            conn.execute(update(monitoring_rules).where(monitoring_rules.c.kind == kind).values(row))
        uow.audit(actor, "logistics.rule_saved", "monitoring_rule", kind,
                  None if before is None else {"params": before["params"], "active": before["active"]},
                  {"params": values, "active": active})
        uow.emit("logistics.rule_saved", "monitoring_rule", kind, {"params": values, "active": active})
    return next(r for r in list_rules(uow, actor) if r["kind"] == kind)


def list_alerts(uow: UnitOfWork, actor: Actor, consignment_id: str | None = None, kind: str | None = None,
                limit: int = 100, offset: int = 0) -> dict:
    with uow.read() as conn:
        query = select(monitoring_alerts, consignments.c.transport_document).join(
            consignments, consignments.c.id == monitoring_alerts.c.consignment_id)
        parties = _visible_parties(uow, actor)
        if parties is not None:
            query = query.where(monitoring_alerts.c.consignment_id.in_(_visible_consignments(parties)))
        if consignment_id:
            query = query.where(monitoring_alerts.c.consignment_id == consignment_id)
        if kind:
            query = query.where(monitoring_alerts.c.kind == kind)
        total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = conn.execute(query.order_by(monitoring_alerts.c.id.desc()).limit(limit).offset(offset)).mappings()
        return {"items": [_alert_view(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def _alert_view(row: Mapping[str, Any]) -> dict:
    return {"id": row["id"], "consignment_id": row["consignment_id"],
            "transport_document": row["transport_document"], "kind": row["kind"],
            "equipment": row["equipment_number"], "raised_at": row["raised_at"], "message": row["message"],
            "details": row["details"]}


# --- EPCIS query ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventQuery:
    """The standard's SimpleEventQuery parameters that Trade Window answers."""

    event_types: Sequence[str] = ()
    ge_event_time: datetime | None = None
    lt_event_time: datetime | None = None
    biz_steps: Sequence[str] = ()
    dispositions: Sequence[str] = ()
    match_epc: Sequence[str] = ()          # epcList, childEPCs, inputEPCList, outputEPCList
    match_parent: Sequence[str] = ()
    match_any_epc: Sequence[str] = ()      # any of the above and parentID
    biz_locations: Sequence[str] = ()
    read_points: Sequence[str] = ()
    per_page: int = 30
    page_token: str | None = None


def query_events(uow: UnitOfWork, actor: Actor, query: EventQuery) -> dict:
    """Events in event-time order as an EPCISQueryDocument, one page at a time: a page that is not
    the last carries nextPageToken, to be sent back with the same filters."""
    with uow.read() as conn:
        stmt = select(epcis_events, epcis_captures.c.context).join(
            epcis_captures, epcis_captures.c.id == epcis_events.c.capture_id)
        parties = _visible_parties(uow, actor)
        if parties is not None:
            concerning = select(tracked_events.c.event_pk).where(
                tracked_events.c.consignment_id.in_(_visible_consignments(parties)))
            mine = epcis_events.c.captured_by.in_(parties) if parties else false()
            stmt = stmt.where(or_(mine, epcis_events.c.pk.in_(concerning)))
        stmt = stmt.where(*_filters(query, conn.dialect.name))
        if query.page_token:
            after_time, after_pk = _read_token(query.page_token)
            stmt = stmt.where(or_(epcis_events.c.event_time > after_time,
                                  and_(epcis_events.c.event_time == after_time, epcis_events.c.pk > after_pk)))
        rows = conn.execute(stmt.order_by(epcis_events.c.event_time, epcis_events.c.pk)
                            .limit(query.per_page + 1)).mappings().all()
    more = len(rows) > query.per_page
    rows = rows[:query.per_page]
    contexts: list[Any] = [DEFAULT_CONTEXT]
    for row in rows:
        for entry in _as_list(row["context"]):
            if isinstance(entry, Mapping) and entry not in contexts:
                contexts.append(dict(entry))
    document: dict[str, Any] = {
        "@context": contexts, "type": "EPCISQueryDocument", "schemaVersion": "2.0",
        "creationDate": _iso(utcnow()),
        "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery",
                                       "resultsBody": {"eventList": [_event_out(r) for r in rows]}}},
    }
    if more:
        document["nextPageToken"] = _token(rows[-1]["event_time"], rows[-1]["pk"])
    return document


def _filters(query: EventQuery, dialect: str) -> list[Any]:
    where: list[Any] = []
    if query.event_types:
        where.append(epcis_events.c.event_type.in_(query.event_types))
    if query.ge_event_time:
        where.append(epcis_events.c.event_time >= query.ge_event_time)
    if query.lt_event_time:
        where.append(epcis_events.c.event_time < query.lt_event_time)
    if query.biz_steps:
        where.append(epcis_events.c.biz_step.in_([model.cbv_short("bizStep", v) for v in query.biz_steps]))
    if query.dispositions:
        where.append(epcis_events.c.disposition.in_([model.cbv_short("disposition", v) for v in query.dispositions]))
    if query.biz_locations:
        where.append(epcis_events.c.biz_location.in_(query.biz_locations))
    if query.read_points:
        where.append(epcis_events.c.read_point.in_(query.read_points))
    for values, listed, parent in ((query.match_epc, True, False), (query.match_parent, False, True),
                                   (query.match_any_epc, True, True)):
        if values:
            where.append(or_(*(_epc_match(dialect, v, listed, parent) for v in values)))
    return where


def _epc_match(dialect: str, pattern: str, listed: bool, parent: bool) -> Any:
    """The event names `pattern` among its listed EPCs (epcList, childEPCs, inputEPCList,
    outputEPCList) and/or as its parentID: an EPC (on PostgreSQL found through the GIN index of
    the lists), or a pattern ending in '*' (urn:epc:idpat:sgtin:4012345.011111.* or any prefix*)."""
    found = []
    if pattern.endswith("*"):
        prefix = _escape_like(pattern[:-1].replace("urn:epc:idpat:", "urn:epc:id:", 1)) + "%"
        if parent:
            found.append(epcis_events.c.parent_epc.like(prefix, escape="\\"))
        if listed and dialect == "postgresql":
            element = func.unnest(epcis_events.c.epcs).table_valued("value").render_derived(name="listed")
            found.append(exists(select(element.c.value).where(element.c.value.like(prefix, escape="\\"))))
        elif listed:
            found.append(_any_element(epcis_events.c.epcs, lambda value: value.like(prefix, escape="\\")))
        return or_(*found)
    if parent:
        found.append(epcis_events.c.parent_epc == pattern)
    if listed and dialect == "postgresql":
        found.append(epcis_events.c.epcs.op("@>")(bindparam(None, [pattern], type_=postgresql.ARRAY(Text))))
    elif listed:
        found.append(_any_element(epcis_events.c.epcs, lambda value: value == pattern))
    return or_(*found)


def _event_out(row: Mapping[str, Any]) -> dict:
    body = dict(row["body"])
    for key in EPC_LISTS:
        if body.get(key) == EPCS_ON_ROW:
            body[key] = list(row["epcs"])
    body["eventID"] = row["event_id"]
    body["recordTime"] = _iso(row["record_time"])
    return body


def _token(event_time: datetime, pk: str) -> str:
    raw = json.dumps([event_time.isoformat(), pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        moment, pk = json.loads(raw)
        parsed = model.parse_instant(moment)
        if parsed is None or not isinstance(pk, str):
            raise ValueError
        return parsed, pk
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ValidationFailed("nextPageToken is not one this server gave out.", "invalid_page_token",
                               "nextPageToken") from exc


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# --- timelines ------------------------------------------------------------------------------------

def timeline(uow: UnitOfWork, actor: Actor, consignment_id: str, equipment_number: str | None = None) -> dict:
    """Everything that happened to a consignment (or one of its containers): its events in time
    order, where each unit is now, which seal it carries and the seal history, the stops reached
    against the plan, the ETA, and the alerts."""
    with uow.read() as conn:
        _require_visible(uow, actor, consignment_id)
        view = _view(uow, consignment_id)
        units = {u["id"]: u for u in view["equipment"]}
        if equipment_number is not None:
            number = model.compact(equipment_number)
            units = {k: u for k, u in units.items() if u["number"] == number}
            if not units:
                raise not_found("equipment", equipment_number)
        # The events of each unit, through its links (the primary key of tracked_events leads
        # with the equipment, so this reads only that unit's links however many events there are).
        by_event: dict[str, list[str]] = defaultdict(list)
        found: dict[str, Mapping[str, Any]] = {}
        for row in conn.execute(select(epcis_events, tracked_events.c.equipment_id.label("linked_unit")).join(
                tracked_events, tracked_events.c.event_pk == epcis_events.c.pk).where(
                tracked_events.c.equipment_id.in_(list(units)),
                tracked_events.c.consignment_id == consignment_id)).mappings():
            by_event[row["pk"]].append(units[row["linked_unit"]]["number"])
            found.setdefault(row["pk"], row)
        events = sorted(found.values(), key=lambda r: (r["event_time"], r["pk"]))
        # Seals declared with the consignment first, then what events reported, in event time.
        seal_rows = sorted(conn.execute(select(seals).where(seals.c.equipment_id.in_(list(units)))).mappings(),
                           key=lambda s: (s["event_pk"] is not None, s["recorded_at"], s["id"]))
        alerts = [_alert_view(r) for r in conn.execute(
            select(monitoring_alerts, consignments.c.transport_document)
            .join(consignments, consignments.c.id == monitoring_alerts.c.consignment_id)
            .where(monitoring_alerts.c.consignment_id == consignment_id)
            .order_by(monitoring_alerts.c.id.desc()).limit(100)).mappings()]
    if equipment_number is not None:
        numbers = {u["number"] for u in units.values()}
        alerts = [a for a in alerts if a["equipment"] in numbers or a["equipment"] is None]
    latest = max((u for u in units.values() if u["last_event_time"]), key=lambda u: u["last_event_time"],
                 default=None)
    return {
        "consignment": view,
        "equipment": list(units.values()),
        "position": None if latest is None else {"location": latest["location"], "since": latest["located_since"],
                                                 "last_event_time": latest["last_event_time"],
                                                 "equipment": latest["number"]},
        "events": [_timeline_entry(r, sorted(by_event[r["pk"]])) for r in events],
        "seal_history": [{"equipment": next(u["number"] for u in units.values() if u["id"] == s["equipment_id"]),
                          "number": s["number"], "kind": s["kind"], "status": s["status"],
                          "recorded_at": s["recorded_at"], "from_event": s["event_pk"] is not None}
                         for s in seal_rows],
        "alerts": alerts,
        "eta": view["eta"],
    }


def _timeline_entry(row: Mapping[str, Any], numbers: list[str]) -> dict:
    body = row["body"]
    seal = next((body[k] for k in model.SEAL_FIELDS if k in body), None)
    return {"event_id": row["event_id"], "type": row["event_type"], "action": row["action"],
            "event_time": row["event_time"], "biz_step": row["biz_step"], "disposition": row["disposition"],
            "location": row["locode"] or row["biz_location"] or row["read_point"], "equipment": numbers,
            "seal": seal}


def container_timeline(uow: UnitOfWork, actor: Actor, number: str) -> dict:
    """The timeline of a container (or wagon, barge, flight) on its latest consignment the actor
    may see."""
    with uow.read() as conn:       # one transaction: timeline() joins it
        query = select(equipment.c.consignment_id).where(equipment.c.number == model.compact(number))
        parties = _visible_parties(uow, actor)
        if parties is not None:
            query = query.where(equipment.c.consignment_id.in_(_visible_consignments(parties)))
        consignment_id = conn.execute(query.order_by(equipment.c.consignment_id.desc()).limit(1)).scalars().first()
        if consignment_id is None:
            raise not_found("equipment", number)
        return timeline(uow, actor, consignment_id, number)


# --- the seal record, for customs -----------------------------------------------------------------

SEAL_ALERTS = (RuleKind.SEAL_BROKEN.value, RuleKind.SEAL_CHANGED.value)


def seal_record(uow: UnitOfWork, reference: str, trader_id: str | None = None) -> dict | None:
    """The electronic seal record of a consignment, for the customs office of exit: the
    consignment named by `reference` (its id, its client reference or its transport document; the
    latest reported when several match), each sealed container with its seal history, and whether
    the record is unbroken: every container carries the seal declared at departure, still intact
    and never changed, and no seal_broken or seal_changed alert was raised. With `trader_id` only
    that trader's consignments are considered (customs passes the declaration's trader, so a
    declaration never reads another trader's goods). None when no consignment matches."""
    text = reference.strip() if isinstance(reference, str) else ""
    if not text:
        return None
    with uow.read() as conn:
        query = select(consignments.c.id).where(or_(consignments.c.id == text,
                                                    consignments.c.client_reference == text,
                                                    consignments.c.transport_document == text))
        if trader_id is not None:
            query = query.where(consignments.c.trader_id == trader_id)
        consignment_id = conn.execute(query.order_by(consignments.c.id.desc())).scalars().first()
        if consignment_id is None:
            return None
        view = _view(uow, consignment_id)
        units = conn.execute(select(equipment).where(equipment.c.consignment_id == consignment_id)
                             .order_by(equipment.c.number)).mappings().all()
        history: dict[str, list[dict]] = defaultdict(list)
        for row in sorted(conn.execute(select(seals).where(seals.c.equipment_id.in_([u["id"] for u in units])))
                          .mappings(), key=lambda s: (s["event_pk"] is not None, s["recorded_at"], s["id"])):
            history[row["equipment_id"]].append(row)
        alert_rows = conn.execute(select(monitoring_alerts, consignments.c.transport_document).join(
            consignments, consignments.c.id == monitoring_alerts.c.consignment_id).where(
            monitoring_alerts.c.consignment_id == consignment_id, monitoring_alerts.c.kind.in_(SEAL_ALERTS))
            .order_by(monitoring_alerts.c.raised_at, monitoring_alerts.c.id)).mappings().all()
    alerts = [_alert_view(r) for r in alert_rows]
    containers = []
    for unit in units:
        rows = history.get(unit["id"], [])
        if unit["kind"] != model.EquipmentKind.CONTAINER.value and not rows:
            continue     # a wagon, barge or flight with no seal of its own: what it carries is what counts
        containers.append(_sealed_unit(unit, rows, [a for a in alerts if a["equipment"] == unit["number"]]))
    return {"consignment": view, "containers": containers, "alerts": alerts,
            "unbroken": bool(containers) and not alerts and all(c["unbroken"] for c in containers)}


def _sealed_unit(unit: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], alerts: list[dict]) -> dict:
    declared = [r for r in rows if r["event_pk"] is None]
    departure = declared[0]["number"] if declared else None
    reasons = []
    if departure is None:
        reasons.append("no seal declared at departure")
    if unit["seal_broken"] or any(r["status"] != "intact" for r in rows):
        reasons.append("seal reported broken")
    if departure is not None and (unit["seal_number"] != departure or any(r["number"] != departure for r in rows)):
        reasons.append(f"seal changed from {departure} to {unit['seal_number']}")
    reasons.extend(f"{a['kind'].replace('_', ' ')} alert" for a in alerts)
    return {"number": unit["number"], "kind": unit["kind"], "carried_on": unit["carried_on"],
            "seal": None if unit["seal_number"] is None else {
                "number": unit["seal_number"], "kind": unit["seal_kind"],
                "status": "broken" if unit["seal_broken"] else "intact"},
            "departure_seal": departure,
            "seals": [{"number": r["number"], "kind": r["kind"], "status": r["status"],
                       "recorded_at": r["recorded_at"], "from_event": r["event_pk"] is not None} for r in rows],
            "location": unit["locode"], "unbroken": not reasons, "reasons": reasons}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def location_names(uow: UnitOfWork) -> dict[str, dict]:
    """UN/LOCODE -> {name, name_zh} from the location code list."""
    with uow.read() as conn:
        return {e["code"]: {"name": e["name"], "name_zh": e["name_zh"]}
                for e in codelists.entries(conn, "location")}
