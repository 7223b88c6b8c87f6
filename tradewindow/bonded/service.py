"""Bonded business actions (DESIGN.md §4.3): open an account book, admit the goods of a released
bonded-entry declaration, release goods to the domestic market or re-export them through a
declaration lodged in the single window, destroy under supervision, take out temporarily and
bring back, adjust after stocktaking; and the reports (balances, lots, vehicles, movement
history, stocktaking differences with the taxes they would carry, reconciliation).

Goods leave the book only when the declaration that takes them out is released: the request
reserves the stock (so nobody else can promise it), and the relayed outbox event
`customs.declaration.released` moves it. A cancelled or refused declaration frees the
reservation.

Who may do what: the book's enterprise (its traders, and brokers it authorised) keeps its books
and asks for moves; customs supervises destruction and books stocktaking adjustments; customs,
the zone authority and administrators see every book."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from tradewindow.bonded import model
from tradewindow.bonded.model import Location, MoveKind
from tradewindow.bonded.tables import (
    bonded_boms,
    bonded_books,
    bonded_items,
    bonded_lots,
    bonded_moves,
    bonded_processing_materials,
    bonded_processing_orders,
    bonded_request_lines,
    bonded_requests,
    bonded_units,
)
from tradewindow.customs import model as customs_model
from tradewindow.customs import service as customs
from tradewindow.platform.auth import SYSTEM, Actor, Role
from tradewindow.platform.db import UnitOfWork, business_day, utcnow
from tradewindow.platform.errors import Conflict, NotFound, Problem, Problems, ValidationFailed, not_found, require
from tradewindow.platform.fields import FieldReader
from tradewindow.platform.ids import new_id
from tradewindow.platform.money import round_money
from tradewindow.platform.outbox import Event, subscribe
from tradewindow.registry import service as registry

ZERO = Decimal(0)
KEEPERS = (Role.TRADER, Role.BROKER)              # the book's enterprise, or its broker
SUPERVISORS = (Role.CUSTOMS, Role.ADMIN)
SEE_ALL = (Role.CUSTOMS, Role.ZONE, Role.ADMIN)
# Headings whose goods are tracked one by one, by VIN (motor vehicles) or container number.
IN_ZONE_ORDER = (Location.BONDED_STORAGE, Location.BONDED_EXHIBITION, Location.PROCESSING)
VEHICLE_HEADINGS = ("8702", "8703", "8704", "8711")
CONTAINER_HEADINGS = ("8609",)
OUTBOUND = {MoveKind.RELEASE: (customs_model.DeclarationType.BONDED_RELEASE, Location.DOMESTIC_MARKET, "BR"),
            MoveKind.REEXPORT: (customs_model.DeclarationType.REEXPORT, Location.REEXPORTED, "RX")}
BOOK_FIELDS = frozenset({"kind", "name", "enterprise_uscc"})
ADMIT_FIELDS = frozenset({"declaration", "serials", "location"})
LINE_FIELDS = frozenset({"lot_id", "item_id", "serial", "quantity"})
REQUEST_FIELDS = frozenset({"client_reference", "lines", "licence_numbers", "customs_office",
                            "transport_mode", "transport_document", "country_of_destination", "reason",
                            "due_day"})


# --- books ---------------------------------------------------------------------------------------

def open_book(uow: UnitOfWork, actor: Actor, raw: object) -> dict:
    """A new account book for the actor's enterprise (the zone authority may open one for any
    enterprise named by `enterprise_uscc`)."""
    require(actor.is_(Role.TRADER, Role.ZONE, Role.ADMIN), "role_not_allowed",
            "Account books are opened by the zone enterprise or the zone authority.")
    problems = Problems()
    fields = _reader(raw, problems)
    fields.refuse_unknown(BOOK_FIELDS)
    kind = fields.choice("kind", {k.value for k in model.BookKind}, required=True)
    name = fields.text("name", required=True, max_length=200)
    uscc = fields.text("enterprise_uscc", max_length=18)
    enterprise_id = actor.enterprise_id
    if actor.is_(Role.ZONE, Role.ADMIN):
        enterprise = registry.enterprise_by_uscc(uow, uscc) if uscc else None
        if enterprise is None:
            fields.add("enterprise_uscc", "unknown_enterprise", "Name the zone enterprise by its credit code.")
        enterprise_id = enterprise["id"] if enterprise else None
    problems.raise_if_any()
    with uow.transaction() as conn:
        book_id = new_id()
        conn.execute(insert(bonded_books).values(id=book_id, enterprise_id=enterprise_id, kind=kind, name=name,
                                                 opened_at=utcnow(), opened_by=actor.username))
        uow.audit(actor, "bonded.book_opened", "bonded_book", book_id, None, {"kind": kind, "name": name})
        uow.emit("bonded.book.opened", "bonded_book", book_id, {"kind": kind, "name": name},
                 owner_enterprise_id=enterprise_id)
        return _book_summary(uow, actor, _book_row(uow, book_id))


def list_books(uow: UnitOfWork, actor: Actor) -> list[dict]:
    with uow.read() as conn:
        query = select(bonded_books).order_by(bonded_books.c.opened_at)
        if (ids := _visible_enterprises(uow, actor)) is not None:
            query = query.where(bonded_books.c.enterprise_id.in_(ids))
        return [_book_summary(uow, actor, row) for row in conn.execute(query).mappings()]


def get_book(uow: UnitOfWork, actor: Actor, book_id: str) -> dict:
    """A book with its balances per item and location, its lots and its serialised units."""
    with uow.read():
        book = _visible_book(uow, actor, book_id)
        stock = _stock(uow, book_id)
        items = _items(uow, book_id)
        lots = _lots(uow, book_id)
        per_item: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
        for (lot_id, location), quantity in stock.balances.items():
            if location in model.HELD:
                per_item[lots[lot_id]["item_id"]][location.value] += quantity
        return {
            **_book_summary(uow, actor, book),
            "items": [{**item, "balances": {k: model.quantity_text(v) for k, v in per_item[item["id"]].items()},
                       "held": model.quantity_text(sum(per_item[item["id"]].values(), ZERO))}
                      for item in items.values()],
            "lots": [_lot_view(lot, items, stock) for lot in lots.values()],
            "pending_requests": _requests(uow, book_id, status="pending"),
        }


def _book_summary(uow: UnitOfWork, actor: Actor, row: Mapping) -> dict:
    try:
        enterprise: dict | None = registry.get_enterprise(uow, actor, row["enterprise_id"])
    except NotFound:
        enterprise = None
    return {"id": row["id"], "kind": row["kind"], "name": row["name"], "enterprise_id": row["enterprise_id"],
            "enterprise_name": (enterprise or {}).get("name_en"), "opened_at": row["opened_at"]}


def _visible_enterprises(uow: UnitOfWork, actor: Actor) -> list[str] | None:
    if actor.is_(*SEE_ALL):
        return None
    require(actor.is_(*KEEPERS) and actor.enterprise_id is not None, "role_not_allowed",
            "Your role does not keep bonded account books.")
    return registry.visible_enterprise_ids(uow, actor) or [actor.enterprise_id]


def _visible_book(uow: UnitOfWork, actor: Actor, book_id: str, for_update: bool = False) -> dict:
    row = _book_row(uow, book_id, for_update)
    ids = _visible_enterprises(uow, actor)
    if ids is not None and row["enterprise_id"] not in ids:
        raise not_found("account book", book_id)
    return row


def _keeper_book(uow: UnitOfWork, actor: Actor, book_id: str) -> dict:
    """The book, locked, for a move asked by its enterprise (or its authorised broker)."""
    require(actor.is_(*KEEPERS), "role_not_allowed", "Moves are asked for by the book's enterprise or its broker.")
    return _visible_book(uow, actor, book_id, for_update=True)


def _book_row(uow: UnitOfWork, book_id: str, for_update: bool = False) -> dict:
    # Every move of a book takes this lock first: two releases of the last unit queue up, and the
    # second sees the first one's reservation.
    query = uow.locking(select(bonded_books).where(bonded_books.c.id == book_id), for_update)
    row = uow.conn.execute(query).mappings().first()
    if row is None:
        raise not_found("account book", book_id)
    return dict(row)


# --- bonded entry ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Admitted:
    lots: list[dict]
    created: bool


def admit_entry(uow: UnitOfWork, actor: Actor, book_id: str, raw: object) -> Admitted:
    """Admit the goods of a released `bonded_entry` declaration of the book's enterprise: one lot
    per item, into bonded storage (or the exhibition hall), vehicles by VIN. No tax is due. The
    same declaration again returns the lots it made."""
    problems = Problems()
    fields = _reader(raw, problems)
    fields.refuse_unknown(ADMIT_FIELDS)
    reference = fields.text("declaration", required=True, max_length=30)
    location = Location(fields.choice("location", {Location.BONDED_STORAGE.value, Location.BONDED_EXHIBITION.value})
                        or Location.BONDED_STORAGE.value)
    serials = fields.obj("serials") or {}
    problems.raise_if_any()
    assert reference is not None
    with uow.transaction() as conn:
        book = _keeper_book(uow, actor, book_id)
        declaration = customs.get_declaration(uow, actor, reference)
        existing = conn.execute(select(bonded_lots).where(bonded_lots.c.declaration_id == declaration["id"])
                                .order_by(bonded_lots.c.line_number)).mappings().all()
        if existing:
            if existing[0]["book_id"] != book_id:
                raise Conflict("This declaration's goods are already in another account book.", "already_admitted",
                               "declaration")
            return Admitted([dict(r) for r in existing], created=False)
        _check_entry_declaration(declaration, book)
        now, day = utcnow(), business_day(utcnow())
        filing = declaration["filing"]
        lots = []
        for item in filing["items"]:
            item_id = _item_id(uow, book_id, item)
            quantity = Decimal(item["quantity"])
            lot = {"id": new_id(), "book_id": book_id, "item_id": item_id, "declaration_id": declaration["id"],
                   "declaration_number": declaration["number"], "line_number": item["line_number"],
                   "quantity": str(quantity), "origin": item["origin"], "currency": filing["currency"],
                   "value": item["value"], "net_mass_kg": item["net_mass_kg"], "gross_mass_kg": item["gross_mass_kg"],
                   "country_of_dispatch": filing["country_of_dispatch"], "customs_office": filing["customs_office"],
                   "received_at": now}
            conn.execute(insert(bonded_lots), lot)
            line = item["line_number"]
            units = _serials_for(item, quantity, serials.get(str(line)), f"serials.{line}", problems)
            if units is None:
                _move(uow, actor, book_id, lot["id"], item_id, None, MoveKind.ENTRY, Location.ABROAD, location,
                      quantity, declaration, day, now, f"Bonded entry, item {item['line_number']}")
            for kind, serial in units or []:
                unit_id = new_id()
                conn.execute(insert(bonded_units).values(id=unit_id, book_id=book_id, lot_id=lot["id"], kind=kind,
                                                         serial=serial))
                _move(uow, actor, book_id, lot["id"], item_id, unit_id, MoveKind.ENTRY, Location.ABROAD, location,
                      Decimal(1), declaration, day, now, f"Bonded entry of {serial}")
            lots.append(lot)
        problems.raise_if_any()
        uow.audit(actor, "bonded.entry_admitted", "bonded_book", book_id, None,
                  {"declaration": declaration["number"], "lots": [lot["id"] for lot in lots]})
        uow.emit("bonded.entry.admitted", "bonded_book", book_id,
                 {"declaration": declaration["number"], "lots": len(lots)}, owner_enterprise_id=book["enterprise_id"])
        return Admitted(lots, created=True)


def _check_entry_declaration(declaration: dict, book: dict) -> None:
    if declaration["type"] != customs_model.DeclarationType.BONDED_ENTRY.value:
        raise Conflict(f"Declaration {declaration['number']} is a {declaration['type']} declaration; goods enter "
                       "the book by a bonded_entry declaration.", "not_a_bonded_entry", "declaration")
    if declaration["trader_id"] != book["enterprise_id"]:
        raise Conflict("The declaration's goods belong to another enterprise than the book's.",
                       "not_the_book_enterprise", "declaration")
    if declaration["status"] != customs_model.Status.RELEASED.value:
        raise Conflict(f"Declaration {declaration['number']} is {declaration['status']}; goods are admitted once "
                       "it is released.", "declaration_not_released", "declaration")


def _item_id(uow: UnitOfWork, book_id: str, item: Mapping) -> str:
    key = {"book_id": book_id, "tariff_code": item["tariff_code"], "description": item["description"][:255],
           "unit": item["unit"]}
    found = uow.conn.execute(select(bonded_items.c.id)
                             .where(*[bonded_items.c[k] == v for k, v in key.items()])).scalar()
    if found:
        return found
    item_id = new_id()
    uow.conn.execute(insert(bonded_items).values(id=item_id, **key))
    return item_id


def _serials_for(item: Mapping, quantity: Decimal, given: object, path: str,
                 problems: Problems) -> list[tuple[str, str]] | None:
    """The units of a serialised item (vehicles need one VIN per vehicle); None for fungible goods."""
    code = item["tariff_code"]
    kind = ("vehicle" if code.startswith(VEHICLE_HEADINGS) else "container" if code.startswith(CONTAINER_HEADINGS)
            else None)
    if kind is None and not given:
        return None
    if not isinstance(given, list) or quantity != quantity.to_integral_value() or len(given) != int(quantity):
        problems.add(path, "serials_required",
                     f"Item {item['line_number']} is tracked one by one: give {quantity} serial numbers.")
        return []
    units = []
    for index, text in enumerate(given):
        serial = model.normalise_serial(str(text))
        problem = model.vin_problem(serial) if kind != "container" else model.container_problem(serial)
        if problem is not None:
            problems.add(f"{path}[{index}]", problem.code, problem.message)
        units.append((kind or "vehicle", serial))
    if len({s for _, s in units}) != len(units):
        problems.add(path, "duplicate_serial", "A serial number appears twice.")
    return units


# --- stock ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stock:
    moves: list[model.Move]
    balances: model.Balances
    reserved: dict[tuple[str, Location], Decimal]
    reserved_units: set[str]
    unit_locations: dict[str, Location]


def _stock(uow: UnitOfWork, book_id: str) -> Stock:
    moves = [model.Move(r["lot_id"], Location(r["from_location"]), Location(r["to_location"]),
                        Decimal(r["quantity"]), MoveKind(r["kind"]), r["unit_id"], r["day"], r["item_id"])
             for r in uow.conn.execute(select(bonded_moves).where(bonded_moves.c.book_id == book_id)
                                       .order_by(bonded_moves.c.id)).mappings()]
    reserved: dict[tuple[str, Location], Decimal] = defaultdict(lambda: ZERO)
    units = set()
    for line in uow.conn.execute(select(bonded_request_lines).join(
            bonded_requests, bonded_requests.c.id == bonded_request_lines.c.request_id).where(
            bonded_requests.c.book_id == book_id, bonded_requests.c.status == "pending")).mappings():
        reserved[(line["lot_id"], Location(line["location"]))] += Decimal(line["quantity"])
        if line["unit_id"]:
            units.add(line["unit_id"])
    return Stock(moves, model.balances(moves), dict(reserved), units, model.unit_locations(moves))


def _items(uow: UnitOfWork, book_id: str) -> dict[str, dict]:
    return {r["id"]: dict(r) for r in uow.conn.execute(
        select(bonded_items).where(bonded_items.c.book_id == book_id).order_by(bonded_items.c.tariff_code,
                                                                               bonded_items.c.id)).mappings()}


def _lots(uow: UnitOfWork, book_id: str) -> dict[str, dict]:
    # FIFO order: the oldest admission first (ids are time-ordered).
    return {r["id"]: dict(r) for r in uow.conn.execute(
        select(bonded_lots).where(bonded_lots.c.book_id == book_id)
        .order_by(bonded_lots.c.received_at, bonded_lots.c.id)).mappings()}


def _lot_view(lot: dict, items: dict[str, dict], stock: Stock) -> dict:
    at = {loc.value: model.quantity_text(q) for (lot_id, loc), q in stock.balances.items()
          if lot_id == lot["id"] and loc in model.HELD}
    reserved = sum((q for (lot_id, _), q in stock.reserved.items() if lot_id == lot["id"]), ZERO)
    item = items[lot["item_id"]]
    return {"id": lot["id"], "item_id": lot["item_id"], "tariff_code": item["tariff_code"],
            "description": item["description"], "unit": item["unit"], "declaration_id": lot["declaration_id"],
            "declaration_number": lot["declaration_number"], "line_number": lot["line_number"],
            "admitted": lot["quantity"], "origin": lot["origin"], "received_at": lot["received_at"],
            "value": lot["value"], "currency": lot["currency"], "source_lot_id": lot["source_lot_id"],
            "balances": at, "reserved": model.quantity_text(reserved)}


def list_units(uow: UnitOfWork, actor: Actor, book_id: str, q: str = "") -> list[dict]:
    """The serialised units of a book (vehicles, containers) with where each is; `q` finds VINs
    containing the text."""
    with uow.read() as conn:
        _visible_book(uow, actor, book_id)
        stock = _stock(uow, book_id)
        query = (select(bonded_units, bonded_lots.c.declaration_number, bonded_items.c.description)
                 .join(bonded_lots, bonded_lots.c.id == bonded_units.c.lot_id)
                 .join(bonded_items, bonded_items.c.id == bonded_lots.c.item_id)
                 .where(bonded_units.c.book_id == book_id).order_by(bonded_units.c.serial))
        if q.strip():
            query = query.where(bonded_units.c.serial.contains(model.normalise_serial(q), autoescape=True))
        return [{"id": r["id"], "kind": r["kind"], "serial": r["serial"], "lot_id": r["lot_id"],
                 "description": r["description"], "declaration_number": r["declaration_number"],
                 "location": stock.unit_locations.get(r["id"], Location.ABROAD).value,
                 "reserved": r["id"] in stock.reserved_units} for r in conn.execute(query).mappings()]


def history(uow: UnitOfWork, actor: Actor, book_id: str, lot_id: str | None = None,
            serial: str | None = None) -> list[dict]:
    """The moves of a book, of one lot, or of one vehicle (by VIN), oldest first."""
    with uow.read() as conn:
        _visible_book(uow, actor, book_id)
        query = (select(bonded_moves, bonded_units.c.serial)
                 .outerjoin(bonded_units, bonded_units.c.id == bonded_moves.c.unit_id)
                 .where(bonded_moves.c.book_id == book_id).order_by(bonded_moves.c.id))
        if lot_id:
            query = query.where(bonded_moves.c.lot_id == lot_id)
        if serial:
            query = query.where(bonded_units.c.serial == model.normalise_serial(serial))
        return [{"id": r["id"], "kind": r["kind"], "lot_id": r["lot_id"], "serial": r["serial"],
                 "from": r["from_location"], "to": r["to_location"], "quantity": r["quantity"],
                 "declaration_id": r["declaration_id"], "declaration_number": r["declaration_number"],
                 "request_id": r["request_id"], "note": r["note"], "moved_at": r["moved_at"], "day": r["day"],
                 "moved_by": r["moved_by"]} for r in conn.execute(query).mappings()]


def _move(uow: UnitOfWork, actor: Actor, book_id: str, lot_id: str, item_id: str, unit_id: str | None,
          kind: MoveKind, source: Location, destination: Location, quantity: Decimal,
          declaration: Mapping | None, day: date, now: Any, note: str, request_id: str | None = None) -> None:
    uow.conn.execute(insert(bonded_moves).values(
        id=new_id(), book_id=book_id, lot_id=lot_id, item_id=item_id, unit_id=unit_id, kind=kind.value,
        from_location=source.value, to_location=destination.value, quantity=model.quantity_text(quantity),
        request_id=request_id, declaration_id=declaration["id"] if declaration else None,
        declaration_number=declaration["number"] if declaration else None, note=note, moved_at=now, day=day,
        moved_by=actor.username))


# --- requests: what leaves the book ------------------------------------------------------------------

@dataclass(frozen=True)
class Line:
    lot_id: str
    unit_id: str | None
    location: Location
    quantity: Decimal


def _resolve_lines(uow: UnitOfWork, book_id: str, raw_lines: list[object], stock: Stock,
                   problems: Problems) -> list[Line]:
    """Request lines -> (lot, unit, location, quantity), refusing more than is available (held in
    the zone, not reserved). A line names a vehicle (`serial`), a lot and quantity, or an item and
    quantity (taken first in, first out over its lots)."""
    lots = _lots(uow, book_id)
    lines: list[Line] = []
    taken: dict[tuple[str, Location], Decimal] = defaultdict(lambda: ZERO)

    def available(lot_id: str, location: Location) -> Decimal:
        return (stock.balances.get((lot_id, location), ZERO) - stock.reserved.get((lot_id, location), ZERO)
                - taken[(lot_id, location)])

    for index, raw in enumerate(raw_lines):
        fields = _reader(raw, problems, f"lines[{index}]")
        fields.refuse_unknown(LINE_FIELDS)
        serial = fields.text("serial", max_length=20)
        lot_id = fields.text("lot_id", max_length=26)
        item_id = fields.text("item_id", max_length=26)
        quantity = fields.amount("quantity", positive=True)
        if serial:
            unit = uow.conn.execute(select(bonded_units).where(
                bonded_units.c.book_id == book_id,
                bonded_units.c.serial == model.normalise_serial(serial))).mappings().first()
            if unit is None:
                fields.add("serial", "unknown_serial", f"No vehicle or container {serial} in this book.")
                continue
            where = stock.unit_locations.get(unit["id"])
            if where not in model.IN_ZONE or unit["id"] in stock.reserved_units \
                    or any(line.unit_id == unit["id"] for line in lines):
                state = "reserved for a pending declaration" if unit["id"] in stock.reserved_units else \
                    f"at {where.value if where else 'nowhere'}"
                fields.add("serial", "insufficient_stock", f"{unit['serial']} is not available: it is {state}.")
                continue
            lines.append(Line(unit["lot_id"], unit["id"], where, Decimal(1)))
            taken[(unit["lot_id"], where)] += 1
            continue
        if quantity is None:
            if not fields.given("quantity"):
                fields.add("quantity", "required", "Give the quantity (or a serial number).")
            continue
        if lot_id:
            if lot_id not in lots:
                fields.add("lot_id", "unknown_lot", f"No lot {lot_id} in this book.")
                continue
            candidates = [lot_id]
        elif item_id:
            candidates = [lid for lid, lot in lots.items() if lot["item_id"] == item_id]
            if not candidates:
                fields.add("item_id", "unknown_item", f"No item {item_id} in this book.")
                continue
        else:
            fields.add("lot_id", "required", "Name a serial number, a lot or an item.")
            continue
        if any(_serialised(uow, lid) for lid in candidates):
            fields.add("quantity", "serials_required", "Vehicles and containers move one by one: name the serial.")
            continue
        # Each (lot, location) pair is one entry of the pool, lots oldest first: first in, first out.
        pairs = [(lid, loc) for lid in candidates for loc in IN_ZONE_ORDER]
        pool = [model.Available(str(i), available(lid, loc)) for i, (lid, loc) in enumerate(pairs)]
        try:
            parts = model.allocate_fifo(pool, quantity, f"Lot {lot_id}" if lot_id else "The item")
        except model.InsufficientStock as exc:
            reserved = sum((stock.reserved.get(pair, ZERO) for pair in pairs), ZERO)
            message = exc.problems[0].message.replace(" at bonded_storage", " in the zone")
            if reserved:
                message = message.replace("; ", f" ({model.quantity_text(reserved)} more reserved for pending "
                                                 "declarations); ", 1)
            fields.add("quantity", "insufficient_stock", message)
            continue
        for key, part in parts:
            lid, loc = pairs[int(key)]
            lines.append(Line(lid, None, loc, part))
            taken[(lid, loc)] += part
    return lines


def _serialised(uow: UnitOfWork, lot_id: str) -> bool:
    return uow.conn.execute(select(func.count()).select_from(bonded_units)
                            .where(bonded_units.c.lot_id == lot_id)).scalar_one() > 0


def _by_reference(uow: UnitOfWork, book_id: str, reference: str) -> dict | None:
    row = uow.conn.execute(select(bonded_requests).where(bonded_requests.c.book_id == book_id,
                                                         bonded_requests.c.client_reference == reference)
                           ).mappings().first()
    return _request_view(uow, row) if row else None


def _store_request(uow: UnitOfWork, actor: Actor, book_id: str, kind: MoveKind, reference: str,
                   lines: list[Line], status: str = "pending", declaration: Mapping | None = None,
                   due_day: date | None = None, reason: str = "", request_id: str | None = None,
                   counterpart_book_id: str | None = None, counterpart_request_id: str | None = None) -> str:
    request_id = request_id or new_id()
    uow.conn.execute(insert(bonded_requests).values(
        id=request_id, book_id=book_id, kind=kind.value, status=status, client_reference=reference,
        declaration_id=declaration["id"] if declaration else None,
        declaration_number=declaration["number"] if declaration else None, due_day=due_day, reason=reason,
        created_at=utcnow(), created_by=actor.username, done_at=utcnow() if status == "done" else None,
        counterpart_book_id=counterpart_book_id, counterpart_request_id=counterpart_request_id))
    for line in lines:
        uow.conn.execute(insert(bonded_request_lines).values(
            id=new_id(), request_id=request_id, lot_id=line.lot_id, unit_id=line.unit_id,
            location=line.location.value, quantity=model.quantity_text(line.quantity)))
    return request_id


def _request_view(uow: UnitOfWork, row: Mapping) -> dict:
    lines = uow.conn.execute(select(bonded_request_lines, bonded_units.c.serial)
                             .outerjoin(bonded_units, bonded_units.c.id == bonded_request_lines.c.unit_id)
                             .where(bonded_request_lines.c.request_id == row["id"])
                             .order_by(bonded_request_lines.c.id)).mappings().all()
    return {"id": row["id"], "book_id": row["book_id"], "kind": row["kind"], "status": row["status"],
            "client_reference": row["client_reference"], "declaration_id": row["declaration_id"],
            "declaration_number": row["declaration_number"], "due_day": row["due_day"], "reason": row["reason"],
            "created_at": row["created_at"], "created_by": row["created_by"], "done_at": row["done_at"],
            "counterpart_book_id": row["counterpart_book_id"], "counterpart_request_id": row["counterpart_request_id"],
            "lines": [{"lot_id": line["lot_id"], "serial": line["serial"], "location": line["location"],
                       "quantity": line["quantity"]} for line in lines]}


def _requests(uow: UnitOfWork, book_id: str, status: str | None = None) -> list[dict]:
    query = select(bonded_requests).where(bonded_requests.c.book_id == book_id).order_by(bonded_requests.c.id)
    if status:
        query = query.where(bonded_requests.c.status == status)
    return [_request_view(uow, r) for r in uow.conn.execute(query).mappings()]


def get_request(uow: UnitOfWork, actor: Actor, request_id: str) -> dict:
    with uow.read() as conn:
        row = conn.execute(select(bonded_requests).where(bonded_requests.c.id == request_id)).mappings().first()
        if row is None:
            raise not_found("bonded request", request_id)
        _visible_book(uow, actor, row["book_id"])
        return _request_view(uow, row)


# --- release to the domestic market and re-export ---------------------------------------------------

@dataclass(frozen=True)
class Requested:
    request: dict
    declaration: dict | None
    created: bool


def release_to_domestic(uow: UnitOfWork, actor: Actor, book_id: str, raw: object) -> Requested:
    """Lodge a `bonded_release` declaration for the goods (taxed at the rates in force on ITS
    acceptance day) and reserve them; they move to the domestic market when it is released."""
    return _outbound(uow, actor, book_id, raw, MoveKind.RELEASE)


def reexport(uow: UnitOfWork, actor: Actor, book_id: str, raw: object) -> Requested:
    """Lodge a `reexport` declaration (no duty or tax) and reserve the goods; they leave the book
    when it is released."""
    return _outbound(uow, actor, book_id, raw, MoveKind.REEXPORT)


def quote_release(uow: UnitOfWork, actor: Actor, book_id: str, raw: object) -> dict:
    """The declaration a release would lodge and the duty and taxes it would carry today: the same
    check and assessment that lodging runs, so the dealer sees the figures before confirming."""
    with uow.read():
        book = _visible_book(uow, actor, book_id)
        reference, lines, body = _outbound_filing(uow, actor, book, raw, MoveKind.RELEASE, quoting=True)
        del reference, lines
        day = business_day(utcnow())
        filing, problems = customs_model.check_filing(body, customs.Lookups(uow, book["enterprise_id"]), day)
        problems.raise_if_any()
        assert filing is not None
        assessment = customs_model.assess(filing, customs.Lookups(uow, book["enterprise_id"]), day)
        return {"on": day, "declaration": body, "assessment": assessment.as_dict()}


def _outbound(uow: UnitOfWork, actor: Actor, book_id: str, raw: object, kind: MoveKind) -> Requested:
    with uow.transaction():
        book = _keeper_book(uow, actor, book_id)
        reference = raw.get("client_reference") if isinstance(raw, Mapping) else None
        if isinstance(reference, str) and (done := _by_reference(uow, book_id, reference.strip())):
            declaration = (customs.get_declaration(uow, actor, done["declaration_id"])
                           if done["declaration_id"] else None)
            return Requested(done, declaration, created=False)
        reference, lines, body = _outbound_filing(uow, actor, book, raw, kind)
        declaration = customs.lodge_declaration(uow, actor, body).declaration
        request_id = _store_request(uow, actor, book_id, kind, reference, lines, declaration=declaration)
        uow.audit(actor, f"bonded.{kind.value}_requested", "bonded_request", request_id, None,
                  {"declaration": declaration["number"], "lines": len(lines)})
        uow.emit(f"bonded.{kind.value}.requested", "bonded_request", request_id,
                 {"book_id": book_id, "declaration": declaration["number"]}, owner_enterprise_id=book["enterprise_id"])
        view = _request_view(uow, uow.conn.execute(select(bonded_requests).where(
            bonded_requests.c.id == request_id)).mappings().one())
        return Requested(view, declaration, created=True)


def _outbound_filing(uow: UnitOfWork, actor: Actor, book: Mapping, raw: object, kind: MoveKind,
                     quoting: bool = False) -> tuple[str, list[Line], dict]:
    """Check the request and build the declaration that takes its lines out of the book."""
    declaration_type, _, prefix = OUTBOUND[kind]
    problems = Problems()
    fields = _reader(raw, problems)
    fields.refuse_unknown(REQUEST_FIELDS)
    reference = fields.text("client_reference", required=not quoting, max_length=60) or "QUOTE"
    raw_lines = fields.items("lines", required=True, max_items=500) or []
    office = fields.text("customs_office", max_length=20)
    mode = fields.text("transport_mode", max_length=10)
    document = fields.text("transport_document", max_length=64)
    destination = fields.text("country_of_destination", max_length=2)
    licences = fields.raw.get("licence_numbers") if isinstance(raw, Mapping) else None
    if kind is MoveKind.REEXPORT and destination is None:
        fields.add("country_of_destination", "required", "A re-export names the country of destination.")
    stock = _stock(uow, book["id"])
    lines = _resolve_lines(uow, book["id"], raw_lines, stock, problems)
    if problems:
        _raise_stock_first(problems)
    lots = _lots(uow, book["id"])
    items = _items(uow, book["id"])
    currencies = {lots[line.lot_id]["currency"] for line in lines}
    if len(currencies) > 1:
        raise ValidationFailed("Goods valued in different currencies go on separate declarations.",
                               "mixed_currencies", "lines")
    first = lots[lines[0].lot_id]
    entry_items = _entry_items(uow, actor, {lots[line.lot_id]["declaration_id"] for line in lines})
    declared = []
    for lot_id, group in _by_lot(lines).items():
        lot, quantity = lots[lot_id], sum((line.quantity for line in group), ZERO)
        share = quantity / Decimal(lot["quantity"])
        item = items[lot["item_id"]]
        entry = entry_items.get((lot["declaration_id"], lot["line_number"]), {})
        serials = [s for s in (_serial(uow, line.unit_id) for line in group) if s]
        description = item["description"] + (f" (VIN {', '.join(serials)})" if serials else "")
        declared.append({
            "tariff_code": item["tariff_code"], "description": description[:500], "origin": lot["origin"],
            "quantity": model.quantity_text(quantity), "unit": item["unit"],
            "value": str(round_money(Decimal(lot["value"]) * share, lot["currency"])),
            **{k: _mass(lot[k], share) for k in ("net_mass_kg", "gross_mass_kg") if lot[k]},
            **({"licence_numbers": licences if licences is not None else entry.get("licence_numbers") or []}
               if declaration_type is customs_model.DeclarationType.BONDED_RELEASE else {}),
            **({"origin_certificate": entry["origin_certificate"]} if entry.get("origin_certificate") else {}),
        })
    body = {
        "client_reference": f"{prefix}-{reference}", "type": declaration_type.value,
        "customs_office": office or first["customs_office"], "transport_mode": mode or "road",
        "transport_document": document or f"{prefix}-{reference}", "incoterm": "CIF",
        "currency": first["currency"], "invoice_total": str(sum((Decimal(i["value"]) for i in declared), ZERO)),
        "items": declared,
    }
    if declaration_type is customs_model.DeclarationType.BONDED_RELEASE:
        # Goods entering the market from the zone were dispatched from where they came from.
        body["country_of_dispatch"] = first["country_of_dispatch"] or first["origin"]
    else:
        body["country_of_destination"] = destination
    return reference, lines, body


def _raise_stock_first(problems: Problems) -> None:
    """Stock problems are a conflict (409 insufficient_stock); anything else is a 422."""
    if any(p.code == "insufficient_stock" for p in problems.items) and \
            all(p.code == "insufficient_stock" for p in problems.items):
        raise Conflict(problems.items)
    problems.raise_if_any()


def _entry_items(uow: UnitOfWork, actor: Actor, declaration_ids: set[str]) -> dict[tuple[str, int], dict]:
    """The entry declaration's items behind the lots (licences, certificates of origin). A lot that
    came by transfer or out of processing is traced to a transfer or an order instead: none."""
    found = {}
    for declaration_id in declaration_ids:
        try:
            declaration = customs.get_declaration(uow, actor, declaration_id)
        except NotFound:
            continue
        for item in declaration["filing"]["items"]:
            found[(declaration_id, item["line_number"])] = item
    return found


def _by_lot(lines: list[Line]) -> dict[str, list[Line]]:
    grouped: dict[str, list[Line]] = {}
    for line in lines:
        grouped.setdefault(line.lot_id, []).append(line)
    return grouped


def _serial(uow: UnitOfWork, unit_id: str | None) -> str | None:
    if unit_id is None:
        return None
    return uow.conn.execute(select(bonded_units.c.serial).where(bonded_units.c.id == unit_id)).scalar()


def _mass(total: str, share: Decimal) -> str:
    return str(max((Decimal(total) * share).quantize(Decimal("0.001")), Decimal("0.001")))


# --- the declaration's fate moves the goods ---------------------------------------------------------

def _on_declaration_event(uow: UnitOfWork, event: Event) -> None:
    """Relayed customs events: a released declaration moves its request's goods; a cancelled or
    refused one frees them."""
    code = ((event.payload or {}).get("notification") or {}).get("code")
    if event.aggregate_type != "declaration" or code not in (
            "declaration.released", "declaration.cancelled", "declaration.refused"):
        return
    with uow.transaction() as conn:
        request = conn.execute(select(bonded_requests).where(
            bonded_requests.c.declaration_id == event.aggregate_id,
            bonded_requests.c.status == "pending")).mappings().first()
        if request is None:
            return
        _book_row(uow, request["book_id"], for_update=True)
        actor = Actor(user_id=None, username="customs-release", role=Role.CUSTOMS)
        if code != "declaration.released":
            conn.execute(update(bonded_requests).where(bonded_requests.c.id == request["id"])
                         .values(status="cancelled", done_at=utcnow()))
            uow.audit(actor, "bonded.request_cancelled", "bonded_request", request["id"], {"status": "pending"},
                      {"status": "cancelled", "because": code})
            return
        _carry_out(uow, actor, dict(request), {"id": event.aggregate_id, "number": event.payload.get("number")})


def _carry_out(uow: UnitOfWork, actor: Actor, request: dict, declaration: Mapping | None) -> None:
    kind = MoveKind(request["kind"])
    destination = {MoveKind.RELEASE: Location.DOMESTIC_MARKET, MoveKind.REEXPORT: Location.REEXPORTED,
                   MoveKind.DESTRUCTION: Location.DESTROYED, MoveKind.TEMPORARY_OUT: Location.TEMPORARILY_OUT,
                   MoveKind.TRANSFER_OUT: Location.OTHER_ZONE}[kind]
    stock = _stock(uow, request["book_id"])
    lots = _lots(uow, request["book_id"])
    now = utcnow()
    lines = uow.conn.execute(select(bonded_request_lines).where(
        bonded_request_lines.c.request_id == request["id"])).mappings().all()
    for line in lines:
        location, quantity = Location(line["location"]), Decimal(line["quantity"])
        # The reservation kept this stock for the request; the check guards the invariant anyway.
        model.check_available(f"Lot {line['lot_id']}", location, stock.balances.get((line["lot_id"], location), ZERO),
                              ZERO, quantity)
        _move(uow, actor, request["book_id"], line["lot_id"], lots[line["lot_id"]]["item_id"], line["unit_id"], kind,
              location, destination, quantity, declaration, business_day(now), now,
              f"{kind.value.replace('_', ' ')} ({request['client_reference']})", request["id"])
    uow.conn.execute(update(bonded_requests).where(bonded_requests.c.id == request["id"])
                     .values(status="done", done_at=now))
    uow.audit(actor, f"bonded.{kind.value}_done", "bonded_request", request["id"], {"status": request["status"]},
              {"status": "done"})
    book = _book_row(uow, request["book_id"])
    uow.emit(f"bonded.{kind.value}.done", "bonded_request", request["id"],
             {"book_id": request["book_id"], "declaration": (declaration or {}).get("number")},
             owner_enterprise_id=book["enterprise_id"])


subscribe("customs.declaration.", _on_declaration_event)


# --- moves without a declaration -----------------------------------------------------------------------

def destroy(uow: UnitOfWork, actor: Actor, book_id: str, raw: object) -> Requested:
    """Destruction under customs supervision: recorded by the supervising customs officer."""
    require(actor.is_(*SUPERVISORS), "role_not_allowed", "Destruction is recorded by the supervising customs officer.")
    return _immediate(uow, actor, book_id, raw, MoveKind.DESTRUCTION)


def take_out_temporarily(uow: UnitOfWork, actor: Actor, book_id: str, raw: object) -> Requested:
    """Temporary removal (repair, exhibition outside the zone) with a return deadline (`due_day`)."""
    require(actor.is_(*KEEPERS), "role_not_allowed", "Moves are asked for by the book's enterprise or its broker.")
    return _immediate(uow, actor, book_id, raw, MoveKind.TEMPORARY_OUT)


def _immediate(uow: UnitOfWork, actor: Actor, book_id: str, raw: object, kind: MoveKind) -> Requested:
    with uow.transaction():
        _visible_book(uow, actor, book_id, for_update=True)
        problems = Problems()
        fields = _reader(raw, problems)
        fields.refuse_unknown(REQUEST_FIELDS)
        reference = fields.text("client_reference", required=True, max_length=60)
        if reference and (done := _by_reference(uow, book_id, reference)):
            return Requested(done, None, created=False)
        reason = fields.text("reason", required=True, max_length=2000)
        due = fields.day("due_day", required=kind is MoveKind.TEMPORARY_OUT)
        if due is not None and due < business_day(utcnow()):
            fields.add("due_day", "in_the_past", "The return deadline is a day to come.")
        raw_lines = fields.items("lines", required=True, max_items=500) or []
        lines = _resolve_lines(uow, book_id, raw_lines, _stock(uow, book_id), problems)
        if problems:
            _raise_stock_first(problems)
        assert reference is not None
        request_id = _store_request(uow, actor, book_id, kind, reference, lines, due_day=due, reason=reason or "")
        request = dict(uow.conn.execute(select(bonded_requests).where(bonded_requests.c.id == request_id))
                       .mappings().one())
        _carry_out(uow, actor, request, None)
        uow.audit(actor, f"bonded.{kind.value}_recorded", "bonded_book", book_id, None, {"request": request_id})
        return Requested(_by_reference(uow, book_id, reference) or {}, None, created=True)


def return_temporarily_out(uow: UnitOfWork, actor: Actor, request_id: str) -> dict:
    """Goods taken out temporarily come back to where they were."""
    require(actor.is_(*KEEPERS, *SUPERVISORS), "role_not_allowed", "Returns are recorded by the book's enterprise.")
    with uow.transaction() as conn:
        row = conn.execute(select(bonded_requests).where(bonded_requests.c.id == request_id)).mappings().first()
        if row is None or row["kind"] != MoveKind.TEMPORARY_OUT.value:
            raise not_found("temporary removal", request_id)
        _visible_book(uow, actor, row["book_id"], for_update=True)
        if conn.execute(select(func.count()).select_from(bonded_moves).where(
                bonded_moves.c.request_id == request_id,
                bonded_moves.c.kind == MoveKind.TEMPORARY_RETURN.value)).scalar_one():
            raise Conflict("These goods are already back.", "already_returned")
        lots = _lots(uow, row["book_id"])
        now = utcnow()
        for line in conn.execute(select(bonded_request_lines).where(
                bonded_request_lines.c.request_id == request_id)).mappings():
            _move(uow, actor, row["book_id"], line["lot_id"], lots[line["lot_id"]]["item_id"], line["unit_id"],
                  MoveKind.TEMPORARY_RETURN, Location.TEMPORARILY_OUT, Location(line["location"]),
                  Decimal(line["quantity"]), None, business_day(now), now,
                  f"back from temporary removal ({row['client_reference']})", request_id)
        uow.audit(actor, "bonded.temporary_return", "bonded_request", request_id, None, {"returned": True})
        return _request_view(uow, row)


def temporarily_out(uow: UnitOfWork, actor: Actor, book_id: str) -> list[dict]:
    """Temporary removals not yet back, with whether their deadline has passed."""
    with uow.read() as conn:
        _visible_book(uow, actor, book_id)
        returned = select(bonded_moves.c.request_id).where(bonded_moves.c.kind == MoveKind.TEMPORARY_RETURN.value)
        rows = conn.execute(select(bonded_requests).where(
            bonded_requests.c.book_id == book_id, bonded_requests.c.kind == MoveKind.TEMPORARY_OUT.value,
            bonded_requests.c.id.not_in(returned)).order_by(bonded_requests.c.due_day)).mappings().all()
        today = business_day(utcnow())
        return [{**_request_view(uow, r), "overdue": r["due_day"] is not None and r["due_day"] < today} for r in rows]


# --- transfer to another zone -------------------------------------------------------------------------

TRANSFER_FIELDS = frozenset({"client_reference", "destination_book_id", "lines", "reason"})


def request_transfer(uow: UnitOfWork, actor: Actor, book_id: str, raw: object) -> Requested:
    """Transfer-out to a book in another zone (named by `destination_book_id`, which its keeper
    gives to the sender): the goods are reserved, and nothing moves until the destination
    approves (approve_transfer). The same client reference again returns the first request."""
    with uow.transaction():
        book = _keeper_book(uow, actor, book_id)
        problems = Problems()
        fields = _reader(raw, problems)
        fields.refuse_unknown(TRANSFER_FIELDS)
        reference = fields.text("client_reference", required=True, max_length=60)
        if reference and (done := _by_reference(uow, book_id, reference)):
            return Requested(done, None, created=False)
        destination_id = fields.text("destination_book_id", required=True, max_length=26)
        reason = fields.text("reason", max_length=2000)
        destination = None
        if destination_id == book_id:
            fields.add("destination_book_id", "same_book", "A transfer goes to another book.")
        elif destination_id:
            destination = uow.conn.execute(select(bonded_books).where(bonded_books.c.id == destination_id)
                                           ).mappings().first()
            if destination is None:
                fields.add("destination_book_id", "unknown_book", f"No account book {destination_id}.")
        raw_lines = fields.items("lines", required=True, max_items=500) or []
        lines = _resolve_lines(uow, book_id, raw_lines, _stock(uow, book_id), problems)
        if problems:
            _raise_stock_first(problems)
        assert reference is not None and destination is not None
        request_id = _store_request(uow, actor, book_id, MoveKind.TRANSFER_OUT, reference, lines,
                                    reason=reason or "", counterpart_book_id=destination["id"])
        uow.audit(actor, "bonded.transfer_requested", "bonded_request", request_id, None,
                  {"destination_book_id": destination["id"], "lines": len(lines)})
        for enterprise_id in {book["enterprise_id"], destination["enterprise_id"]}:
            uow.emit("bonded.transfer.requested", "bonded_request", request_id,
                     {"book_id": book_id, "destination_book_id": destination["id"]}, owner_enterprise_id=enterprise_id)
        return Requested(_by_reference(uow, book_id, reference) or {}, None, created=True)


def incoming_transfers(uow: UnitOfWork, actor: Actor, book_id: str) -> list[dict]:
    """Transfers to this book waiting for its approval, with the goods they carry."""
    with uow.read() as conn:
        _visible_book(uow, actor, book_id)
        rows = conn.execute(select(bonded_requests).where(
            bonded_requests.c.counterpart_book_id == book_id, bonded_requests.c.kind == MoveKind.TRANSFER_OUT.value,
            bonded_requests.c.status == "pending").order_by(bonded_requests.c.id)).mappings().all()
        return [_transfer_view(uow, row) for row in rows]


def _transfer_view(uow: UnitOfWork, row: Mapping) -> dict:
    """A transfer-out as both books see it: the sender, and each line's goods."""
    view = _request_view(uow, row)
    source = _book_row(uow, row["book_id"])
    lots, items = _lots(uow, row["book_id"]), _items(uow, row["book_id"])
    for line in view["lines"]:
        item = items[lots[line["lot_id"]]["item_id"]]
        line.update(tariff_code=item["tariff_code"], description=item["description"], unit=item["unit"])
    return {**view, "source_book_id": source["id"], "source_book_name": source["name"]}


def approve_transfer(uow: UnitOfWork, actor: Actor, request_id: str, raw: object | None = None) -> dict:
    """The destination's keeper approves a transfer to its book; in one transaction the goods
    move out of the sending book (transfer_out, to the other zone) and into new lots of the
    receiving one (transfer_in), each lot traced to the lot it came from, vehicles by the same
    VIN. Returns the transfer-in request."""
    require(actor.is_(*KEEPERS), "role_not_allowed", "A transfer is approved by the receiving book's enterprise.")
    problems = Problems()
    fields = _reader(raw or {}, problems)
    fields.refuse_unknown(frozenset({"location"}))
    into = Location(fields.choice("location", {Location.BONDED_STORAGE.value, Location.BONDED_EXHIBITION.value})
                    or Location.BONDED_STORAGE.value)
    problems.raise_if_any()
    with uow.transaction() as conn:
        row = _transfer_row(uow, request_id)
        destination_id = row["counterpart_book_id"]
        # Both books locked, in a fixed order so that two transfers between them cannot deadlock.
        for locked in sorted({row["book_id"], destination_id}):
            _book_row(uow, locked, for_update=True)
        destination = _visible_book(uow, actor, destination_id)
        row = _transfer_row(uow, request_id)
        if row["status"] != "pending":
            raise Conflict(f"This transfer is {row['status']}.", "transfer_not_pending")
        source = _book_row(uow, row["book_id"])
        out_lines = conn.execute(select(bonded_request_lines).where(
            bonded_request_lines.c.request_id == request_id).order_by(bonded_request_lines.c.id)).mappings().all()
        _carry_out(uow, actor, dict(row), None)                     # transfer_out on the sending book
        source_lots, source_items = _lots(uow, source["id"]), _items(uow, source["id"])
        in_request_id, now = new_id(), utcnow()
        day = business_day(now)
        grouped: dict[str, list[Mapping]] = {}
        for line in out_lines:
            grouped.setdefault(line["lot_id"], []).append(line)
        in_lines: list[Line] = []
        for number, (lot_id, group) in enumerate(grouped.items(), start=1):
            origin = source_lots[lot_id]
            quantity = sum((Decimal(line["quantity"]) for line in group), ZERO)
            share = quantity / Decimal(origin["quantity"])
            item_id = _item_id(uow, destination_id, source_items[origin["item_id"]])
            new_lot = new_id()
            conn.execute(insert(bonded_lots).values(
                id=new_lot, book_id=destination_id, item_id=item_id, declaration_id=in_request_id,
                declaration_number=origin["declaration_number"], line_number=number,
                quantity=model.quantity_text(quantity), origin=origin["origin"], currency=origin["currency"],
                value=str(round_money(Decimal(origin["value"]) * share, origin["currency"])),
                net_mass_kg=_mass(origin["net_mass_kg"], share) if origin["net_mass_kg"] else None,
                gross_mass_kg=_mass(origin["gross_mass_kg"], share) if origin["gross_mass_kg"] else None,
                country_of_dispatch=origin["country_of_dispatch"], customs_office=origin["customs_office"],
                received_at=now, source_lot_id=lot_id))
            note = f"transfer in from {source['name']} ({row['client_reference']})"
            for line in group:
                unit_id = None
                if line["unit_id"]:
                    unit = conn.execute(select(bonded_units).where(bonded_units.c.id == line["unit_id"])
                                        ).mappings().one()
                    unit_id = new_id()
                    conn.execute(insert(bonded_units).values(id=unit_id, book_id=destination_id, lot_id=new_lot,
                                                             kind=unit["kind"], serial=unit["serial"]))
                elif in_lines and in_lines[-1].lot_id == new_lot:
                    continue                                        # fungible: one move per new lot
                moved = Decimal(1) if unit_id else quantity
                in_lines.append(Line(new_lot, unit_id, into, moved))
                _move(uow, actor, destination_id, new_lot, item_id, unit_id, MoveKind.TRANSFER_IN,
                      Location.OTHER_ZONE, into, moved, None, day, now, note, in_request_id)
        _store_request(uow, actor, destination_id, MoveKind.TRANSFER_IN, f"IN-{request_id}", in_lines, status="done",
                       reason=row["reason"], request_id=in_request_id, counterpart_book_id=source["id"],
                       counterpart_request_id=request_id)
        conn.execute(update(bonded_requests).where(bonded_requests.c.id == request_id)
                     .values(counterpart_request_id=in_request_id))
        uow.audit(actor, "bonded.transfer_approved", "bonded_request", request_id, {"status": "pending"},
                  {"status": "done", "transfer_in": in_request_id})
        for enterprise_id in {source["enterprise_id"], destination["enterprise_id"]}:
            uow.emit("bonded.transfer.approved", "bonded_request", request_id,
                     {"book_id": source["id"], "destination_book_id": destination_id,
                      "transfer_in_request_id": in_request_id}, owner_enterprise_id=enterprise_id)
        return _request_view(uow, conn.execute(select(bonded_requests).where(
            bonded_requests.c.id == in_request_id)).mappings().one())


def cancel_transfer(uow: UnitOfWork, actor: Actor, request_id: str, reason: str = "") -> dict:
    """The sender withdraws a transfer not yet approved, or the destination refuses it: the
    reserved goods are free again."""
    require(actor.is_(*KEEPERS), "role_not_allowed", "A transfer is cancelled by one of its two books' enterprises.")
    with uow.transaction() as conn:
        row = _transfer_row(uow, request_id)
        for locked in sorted({row["book_id"], row["counterpart_book_id"]}):
            _book_row(uow, locked, for_update=True)
        ids = _visible_enterprises(uow, actor) or []
        books = {b["id"]: b for b in (_book_row(uow, row["book_id"]), _book_row(uow, row["counterpart_book_id"]))}
        if not any(book["enterprise_id"] in ids for book in books.values()):
            raise not_found("transfer", request_id)
        row = _transfer_row(uow, request_id)
        if row["status"] != "pending":
            raise Conflict(f"This transfer is {row['status']}.", "transfer_not_pending")
        conn.execute(update(bonded_requests).where(bonded_requests.c.id == request_id)
                     .values(status="cancelled", done_at=utcnow()))
        uow.audit(actor, "bonded.transfer_cancelled", "bonded_request", request_id, {"status": "pending"},
                  {"status": "cancelled", "reason": reason})
        for book in books.values():
            uow.emit("bonded.transfer.cancelled", "bonded_request", request_id, {"book_id": row["book_id"]},
                     owner_enterprise_id=book["enterprise_id"])
        return _request_view(uow, _transfer_row(uow, request_id))


def _transfer_row(uow: UnitOfWork, request_id: str) -> dict:
    row = uow.conn.execute(select(bonded_requests).where(
        bonded_requests.c.id == request_id, bonded_requests.c.kind == MoveKind.TRANSFER_OUT.value)).mappings().first()
    if row is None:
        raise not_found("transfer", request_id)
    return dict(row)


# --- processing trade ------------------------------------------------------------------------------------

BOM_FIELDS = frozenset({"finished", "finished_item_id", "material_item_id", "net_consumption", "loss_rate",
                        "valid_from", "valid_to"})
FINISHED_FIELDS = frozenset({"tariff_code", "description", "unit"})
ORDER_FIELDS = frozenset({"client_reference", "finished_item_id", "quantity", "materials"})


def _processing_book(uow: UnitOfWork, actor: Actor, book_id: str) -> dict:
    book = _keeper_book(uow, actor, book_id)
    if book["kind"] != model.BookKind.PROCESSING_TRADE.value:
        raise Conflict("Bills of materials and processing orders belong to a processing-trade book.",
                       "not_a_processing_book")
    return book


def record_bom(uow: UnitOfWork, actor: Actor, book_id: str, raw: object) -> dict:
    """A bill-of-materials line: how much of a material (an item of the book) one unit of the
    finished item consumes net, the process loss rate and the validity. The finished item is named
    by id or described (`finished`: tariff_code, description, unit); it need not be in stock."""
    problems = Problems()
    fields = _reader(raw, problems)
    fields.refuse_unknown(BOM_FIELDS)
    finished_id = fields.text("finished_item_id", max_length=26)
    finished = fields.obj("finished")
    material_id = fields.text("material_item_id", required=True, max_length=26)
    net = fields.amount("net_consumption", required=True, positive=True)
    loss = fields.rate("loss_rate", below_one=True) or ZERO
    valid_from = fields.day("valid_from") or business_day(utcnow())
    valid_to = fields.day("valid_to")
    if valid_to is not None and valid_to < valid_from:
        fields.add("valid_to", "invalid_period", "The bill of materials ends before it starts.")
    described = None
    if finished is not None:
        reader = _reader(finished, problems, "finished")
        reader.refuse_unknown(FINISHED_FIELDS)
        code = reader.text("tariff_code", required=True, max_length=10)
        if code and not (code.isdigit() and len(code) in (8, 10)):
            reader.add("tariff_code", "invalid_tariff_code", "A tariff line has 8 or 10 digits.")
        described = {"tariff_code": code, "description": reader.text("description", required=True, max_length=255),
                     "unit": reader.text("unit", required=True, max_length=3)}
    elif not finished_id:
        fields.add("finished_item_id", "required", "Name the finished item (finished_item_id or finished).")
    problems.raise_if_any()
    assert net is not None and material_id is not None
    with uow.transaction() as conn:
        book = _processing_book(uow, actor, book_id)
        items = _items(uow, book_id)
        if material_id not in items:
            fields.add("material_item_id", "unknown_item", f"No item {material_id} in this book.")
        if finished_id and finished_id not in items:
            fields.add("finished_item_id", "unknown_item", f"No item {finished_id} in this book.")
        problems.raise_if_any()
        if described is not None:
            finished_id = _item_id(uow, book_id, described)
        assert finished_id is not None
        if finished_id == material_id:
            raise ValidationFailed("An item is not its own material.", "same_item", "material_item_id")
        bom_id = new_id()
        conn.execute(insert(bonded_boms).values(
            id=bom_id, book_id=book_id, finished_item_id=finished_id, material_item_id=material_id,
            net_consumption=model.quantity_text(net), loss_rate=model.quantity_text(loss), valid_from=valid_from,
            valid_to=valid_to, created_at=utcnow(), created_by=actor.username))
        uow.audit(actor, "bonded.bom_recorded", "bonded_book", book_id, None,
                  {"bom": bom_id, "finished_item_id": finished_id, "material_item_id": material_id,
                   "net_consumption": str(net), "loss_rate": str(loss)})
        uow.emit("bonded.bom.recorded", "bonded_book", book_id, {"bom": bom_id},
                 owner_enterprise_id=book["enterprise_id"])
        return _bom_view(_bom_row(uow, bom_id), _items(uow, book_id))


def list_boms(uow: UnitOfWork, actor: Actor, book_id: str) -> list[dict]:
    with uow.read() as conn:
        _visible_book(uow, actor, book_id)
        items = _items(uow, book_id)
        rows = conn.execute(select(bonded_boms).where(bonded_boms.c.book_id == book_id).order_by(
            bonded_boms.c.finished_item_id, bonded_boms.c.material_item_id, bonded_boms.c.valid_from)).mappings()
        return [_bom_view(row, items) for row in rows]


def _bom_row(uow: UnitOfWork, bom_id: str) -> Mapping:
    return uow.conn.execute(select(bonded_boms).where(bonded_boms.c.id == bom_id)).mappings().one()


def _bom(row: Mapping) -> model.BillOfMaterials:
    return model.BillOfMaterials(row["finished_item_id"], row["material_item_id"], Decimal(row["net_consumption"]),
                                 Decimal(row["loss_rate"]), row["valid_from"], row["valid_to"])


def _bom_view(row: Mapping, items: dict[str, dict]) -> dict:
    bom = _bom(row)
    return {"id": row["id"], "finished_item_id": row["finished_item_id"],
            "finished": items[row["finished_item_id"]]["description"], "material_item_id": row["material_item_id"],
            "material": items[row["material_item_id"]]["description"], "net_consumption": row["net_consumption"],
            "loss_rate": row["loss_rate"],
            "unit_consumption": model.quantity_text(bom.unit_consumption.quantize(Decimal("0.000001"))),
            "valid_from": row["valid_from"], "valid_to": row["valid_to"]}


@dataclass(frozen=True)
class Processed:
    order: dict
    created: bool


def process(uow: UnitOfWork, actor: Actor, book_id: str, raw: object) -> Processed:
    """A processing order: makes `quantity` of the finished item out of the materials its bills
    of materials in force today name. Each material is consumed first in, first out from the zone
    (the allowance, finished quantity × unit consumption, unless `materials` says how much was
    really used); what was used beyond the allowance is flagged taxable, with the duty and taxes it
    carries. The finished goods become a new lot, valued at the materials consumed."""
    problems = Problems()
    fields = _reader(raw, problems)
    fields.refuse_unknown(ORDER_FIELDS)
    reference = fields.text("client_reference", required=True, max_length=60)
    finished_id = fields.text("finished_item_id", required=True, max_length=26)
    quantity = fields.amount("quantity", required=True, positive=True)
    used: dict[str, Decimal] = {}
    for index, entry in enumerate(fields.items("materials") or []):
        material = _reader(entry, problems, f"materials[{index}]")
        material.refuse_unknown(frozenset({"item_id", "quantity"}))
        item_id, amount = material.text("item_id", required=True), material.amount("quantity", required=True)
        if item_id and amount is not None:
            used[item_id] = amount
    problems.raise_if_any()
    assert reference is not None and finished_id is not None and quantity is not None
    with uow.transaction() as conn:
        book = _processing_book(uow, actor, book_id)
        if done := _order_by_reference(uow, book_id, reference):
            return Processed(done, created=False)
        items, now = _items(uow, book_id), utcnow()
        day = business_day(now)
        if finished_id not in items:
            raise ValidationFailed(f"No item {finished_id} in this book.", "unknown_item", "finished_item_id")
        boms: dict[str, tuple[str, model.BillOfMaterials]] = {}
        for row in conn.execute(select(bonded_boms).where(
                bonded_boms.c.book_id == book_id, bonded_boms.c.finished_item_id == finished_id)
                .order_by(bonded_boms.c.valid_from)).mappings():
            if _bom(row).in_force(day):
                boms[row["material_item_id"]] = (row["id"], _bom(row))      # the latest in force wins
        if not boms:
            raise Conflict(f"No bill of materials for {items[finished_id]['description']} is in force on {day}.",
                           "no_bill_of_materials", "finished_item_id")
        for index, item_id in enumerate(used):
            if item_id not in boms:
                problems.add(f"materials[{index}].item_id", "not_in_bill_of_materials",
                             "This material is not in the finished item's bill of materials.")
        problems.raise_if_any()
        booked = {m: model.booked_consumption(bom, quantity, used.get(m)) for m, (_, bom) in boms.items()}
        taking = [m for m, c in booked.items() if c.used > 0]
        lines = _resolve_lines(uow, book_id, [{"item_id": m, "quantity": model.quantity_text(booked[m].used)}
                                              for m in taking], _stock(uow, book_id), problems)
        if problems:
            _raise_stock_first(problems)
        lots = _lots(uow, book_id)
        if len({lots[line.lot_id]["currency"] for line in lines}) > 1:
            raise ValidationFailed("Materials valued in different currencies go into separate orders.",
                                   "mixed_currencies", "materials")
        order_id, lot_id = new_id(), new_id()
        value = sum((Decimal(lots[line.lot_id]["value"]) * line.quantity / Decimal(lots[line.lot_id]["quantity"])
                     for line in lines), ZERO)
        first = lots[lines[0].lot_id] if lines else None
        currency = first["currency"] if first else "CNY"
        conn.execute(insert(bonded_lots).values(
            id=lot_id, book_id=book_id, item_id=finished_id, declaration_id=order_id,
            declaration_number=f"PO-{reference}"[:30], line_number=1, quantity=model.quantity_text(quantity),
            origin=None, currency=currency, value=str(round_money(value, currency)), net_mass_kg=None,
            gross_mass_kg=None, country_of_dispatch=None,
            customs_office=first["customs_office"] if first else "", received_at=now, source_lot_id=None))
        conn.execute(insert(bonded_processing_orders).values(
            id=order_id, book_id=book_id, client_reference=reference, finished_item_id=finished_id,
            finished_lot_id=lot_id, quantity=model.quantity_text(quantity), day=day, created_at=now,
            created_by=actor.username))
        note = f"processing order {reference}"
        for line in lines:
            _move(uow, actor, book_id, line.lot_id, lots[line.lot_id]["item_id"], None, MoveKind.CONSUMPTION,
                  line.location, Location.PRODUCTION, line.quantity, None, day, now, note, order_id)
        _move(uow, actor, book_id, lot_id, finished_id, None, MoveKind.PRODUCTION, Location.PRODUCTION,
              Location.BONDED_STORAGE, quantity, None, day, now, note, order_id)
        for material_id, (bom_id, _) in boms.items():
            result = booked[material_id]
            excess: dict = {}
            if result.taxable_excess > 0:
                excess = _shortage_taxes(uow, book, items[material_id], lots, result.taxable_excess)
            conn.execute(insert(bonded_processing_materials).values(
                id=new_id(), order_id=order_id, material_item_id=material_id, bom_id=bom_id,
                allowed=model.quantity_text(result.allowed), used=model.quantity_text(result.used),
                taxable_excess=model.quantity_text(result.taxable_excess), excess_value=excess.get("value"),
                excess_taxes=excess.get("taxes")))
        order = _order_view(uow, _order_row(uow, order_id), items)
        uow.audit(actor, "bonded.processing_done", "bonded_processing_order", order_id, None,
                  {"finished_item_id": finished_id, "quantity": str(quantity), "taxable": order["taxable"]})
        uow.emit("bonded.processing.done", "bonded_processing_order", order_id,
                 {"book_id": book_id, "taxable": order["taxable"]}, owner_enterprise_id=book["enterprise_id"])
        return Processed(order, created=True)


def list_processing_orders(uow: UnitOfWork, actor: Actor, book_id: str) -> list[dict]:
    with uow.read() as conn:
        _visible_book(uow, actor, book_id)
        items = _items(uow, book_id)
        rows = conn.execute(select(bonded_processing_orders).where(bonded_processing_orders.c.book_id == book_id)
                            .order_by(bonded_processing_orders.c.id)).mappings().all()
        return [_order_view(uow, row, items) for row in rows]


def _order_row(uow: UnitOfWork, order_id: str) -> Mapping:
    return uow.conn.execute(select(bonded_processing_orders).where(bonded_processing_orders.c.id == order_id)
                            ).mappings().one()


def _order_by_reference(uow: UnitOfWork, book_id: str, reference: str) -> dict | None:
    row = uow.conn.execute(select(bonded_processing_orders).where(
        bonded_processing_orders.c.book_id == book_id,
        bonded_processing_orders.c.client_reference == reference)).mappings().first()
    return _order_view(uow, row, _items(uow, book_id)) if row else None


def _order_view(uow: UnitOfWork, row: Mapping, items: dict[str, dict]) -> dict:
    materials = [{"item_id": m["material_item_id"], "tariff_code": items[m["material_item_id"]]["tariff_code"],
                  "description": items[m["material_item_id"]]["description"], "bom_id": m["bom_id"],
                  "allowed": m["allowed"], "used": m["used"], "taxable_excess": m["taxable_excess"],
                  "excess_value": m["excess_value"], "excess_taxes": m["excess_taxes"]}
                 for m in uow.conn.execute(select(bonded_processing_materials).where(
                     bonded_processing_materials.c.order_id == row["id"]).order_by(
                     bonded_processing_materials.c.id)).mappings()]
    return {"id": row["id"], "book_id": row["book_id"], "client_reference": row["client_reference"],
            "finished_item_id": row["finished_item_id"], "finished": items[row["finished_item_id"]]["description"],
            "finished_lot_id": row["finished_lot_id"], "quantity": row["quantity"], "day": row["day"],
            "created_by": row["created_by"], "materials": materials,
            "taxable": any(Decimal(m["taxable_excess"]) > 0 for m in materials)}


# --- stocktaking -------------------------------------------------------------------------------------

def stocktaking(uow: UnitOfWork, actor: Actor, book_id: str, raw: object, apply: bool = False) -> dict:
    """Counted quantities per item against the book: the shortage or overage of each item with the
    value and the duty and taxes a shortage would carry (goods missing from a bonded book are
    treated as having entered the market). With `apply`, customs books the differences as
    stocktaking adjustments (shortages first in, first out; overages onto the newest lot)."""
    require(not apply or actor.is_(*SUPERVISORS), "role_not_allowed",
            "Stocktaking adjustments are booked by customs.")
    problems = Problems()
    fields = _reader(raw, problems)
    fields.refuse_unknown(frozenset({"counts", "client_reference"}))
    counts: dict[str, Decimal] = {}
    for index, entry in enumerate(fields.items("counts", required=True) or []):
        count = _reader(entry, problems, f"counts[{index}]")
        count.refuse_unknown(frozenset({"item_id", "quantity"}))
        item_id, quantity = count.text("item_id", required=True), count.amount("quantity", required=True)
        if item_id and quantity is not None:
            counts[item_id] = quantity
    problems.raise_if_any()
    with (uow.transaction() if apply else uow.read()):
        book = _visible_book(uow, actor, book_id, for_update=apply)
        items, lots, stock = _items(uow, book_id), _lots(uow, book_id), _stock(uow, book_id)
        for index, item_id in enumerate(counts):
            if item_id not in items:
                problems.add(f"counts[{index}].item_id", "unknown_item", f"No item {item_id} in this book.")
        problems.raise_if_any()
        in_zone: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for (lot_id, location), quantity in stock.balances.items():
            if location in model.IN_ZONE:
                in_zone[lots[lot_id]["item_id"]] += quantity
        report = []
        for difference in model.stock_differences(in_zone, counts):
            row = {"item_id": difference.item_id, "tariff_code": items[difference.item_id]["tariff_code"],
                   "description": items[difference.item_id]["description"],
                   "book": model.quantity_text(difference.book_quantity),
                   "counted": model.quantity_text(difference.counted),
                   "difference": model.quantity_text(difference.difference), "kind": difference.kind,
                   "value": None, "taxes": None}
            if difference.kind == "shortage":
                row.update(_shortage_taxes(uow, book, items[difference.item_id], lots, -difference.difference))
            report.append(row)
        if apply:
            _book_adjustments(uow, actor, book, lots, stock, report)
        return {"book_id": book_id, "on": business_day(utcnow()), "items": report, "applied": apply}


def _shortage_taxes(uow: UnitOfWork, book: Mapping, item: Mapping, lots: dict[str, dict],
                    missing: Decimal) -> dict:
    """Value the shortage at the item's oldest lot's unit value and quote it like a release."""
    lot = next((lot for lot in lots.values() if lot["item_id"] == item["id"]), None)
    if lot is None:
        return {}
    value = round_money(Decimal(lot["value"]) * missing / Decimal(lot["quantity"]), lot["currency"])
    body = {"client_reference": "STOCKTAKING", "type": "bonded_release", "customs_office": lot["customs_office"],
            "transport_mode": "road", "transport_document": "STOCKTAKING", "incoterm": "CIF",
            "currency": lot["currency"], "invoice_total": str(value),
            "country_of_dispatch": lot["country_of_dispatch"] or lot["origin"] or "CN",
            "items": [{"tariff_code": item["tariff_code"], "description": item["description"], "origin": lot["origin"],
                       "quantity": model.quantity_text(missing), "unit": item["unit"], "value": str(value),
                       "net_mass_kg": "1", "gross_mass_kg": "1"}]}
    day = business_day(utcnow())
    lookups = customs.Lookups(uow, book["enterprise_id"])
    # Licences do not matter to the amount: the check may complain of them; only the quote counts.
    filing, problems = customs_model.check_filing(body, lookups, day)
    if filing is None:
        return {"value": f"{value} {lot['currency']}", "taxes": None,
                "tax_problems": [p.message for p in problems.items]}
    return {"value": f"{value} {lot['currency']}", "taxes": customs_model.assess(filing, lookups, day).totals}


def _book_adjustments(uow: UnitOfWork, actor: Actor, book: Mapping, lots: dict[str, dict], stock: Stock,
                      report: list[dict]) -> None:
    now = utcnow()
    day = business_day(now)
    for row in report:
        difference = Decimal(row["difference"])
        item_lots = [lid for lid, lot in lots.items() if lot["item_id"] == row["item_id"]]
        if difference < 0:
            pool = [model.Available(lid, stock.balances.get((lid, Location.BONDED_STORAGE), ZERO)
                                    - stock.reserved.get((lid, Location.BONDED_STORAGE), ZERO)) for lid in item_lots]
            for lot_id, part in model.allocate_fifo(pool, -difference, "The item", Location.BONDED_STORAGE):
                _move(uow, actor, book["id"], lot_id, row["item_id"], None, MoveKind.ADJUSTMENT,
                      Location.BONDED_STORAGE, Location.STOCKTAKING, part, None, day, now, "stocktaking shortage")
        elif difference > 0 and item_lots:
            _move(uow, actor, book["id"], item_lots[-1], row["item_id"], None, MoveKind.ADJUSTMENT,
                  Location.STOCKTAKING, Location.BONDED_STORAGE, difference, None, day, now, "stocktaking overage")
    uow.audit(actor, "bonded.stocktaking_adjusted", "bonded_book", book["id"], None,
              {"items": [{k: r[k] for k in ("item_id", "difference")} for r in report]})
    uow.emit("bonded.stocktaking.adjusted", "bonded_book", book["id"], {"items": len(report)},
             owner_enterprise_id=book["enterprise_id"])


# --- reconciliation ----------------------------------------------------------------------------------

def reconciliation(uow: UnitOfWork, actor: Actor, book_id: str, start: date, end: date) -> dict:
    """Per item over the period: opening balance, receipts, removals by kind, adjustments, closing
    balance (held goods: in the zone or temporarily out)."""
    if end < start:
        raise ValidationFailed("The period ends before it starts.", "invalid_period", "end")
    with uow.read():
        book = _visible_book(uow, actor, book_id)
        items = _items(uow, book_id)
        rows = model.reconcile(_stock(uow, book_id).moves, start, end)
        kinds = sorted(model.REMOVAL_KINDS)
        return {
            "book": _book_summary(uow, actor, book), "start": start, "end": end,
            "removal_kinds": [k.value for k in kinds],
            "items": [{"item_id": r.item_id, "tariff_code": items[r.item_id]["tariff_code"],
                       "description": items[r.item_id]["description"], "unit": items[r.item_id]["unit"],
                       "opening": model.quantity_text(r.opening), "receipts": model.quantity_text(r.receipts),
                       "removals": {k.value: model.quantity_text((r.removals or {}).get(k.value, ZERO)) for k in kinds},
                       "adjustments": model.quantity_text(r.adjustments), "closing": model.quantity_text(r.closing),
                       "balances": r.balances} for r in rows],
        }


def reconciliation_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    kinds = report["removal_kinds"]
    writer.writerow(["tariff_code", "description", "unit", "opening", "receipts",
                     *[f"removed_{k}" for k in kinds], "adjustments", "closing"])
    for row in report["items"]:
        writer.writerow([row["tariff_code"], row["description"], row["unit"], row["opening"], row["receipts"],
                         *[row["removals"][k] for k in kinds], row["adjustments"], row["closing"]])
    return out.getvalue()


# --- cross-border e-commerce bonded import ------------------------------------------------------------
# An e-commerce order naming a bonded warehouse (the bonded-import mode, "1210") takes its goods out
# of that warehouse's cbec_bonded_import book when customs releases (or inspects) the parcel; the
# platform withheld the parcel's taxes, so no declaration is lodged per parcel. The e-commerce
# context calls these inside its own decision transaction.

CBEC_REFERENCE = "cbec:{}"


def cbec_book(uow: UnitOfWork, warehouse: str, for_update: bool = False) -> dict | None:
    """The cross-border e-commerce account book an order names: by its id, or by its name when
    one book of that kind bears it. None when there is none."""
    kind = model.BookKind.CBEC_BONDED_IMPORT.value
    found = uow.conn.execute(select(bonded_books.c.id).where(bonded_books.c.kind == kind,
                                                             bonded_books.c.id == warehouse)).scalar()
    if found is None:
        named = uow.conn.execute(select(bonded_books.c.id).where(
            bonded_books.c.kind == kind, bonded_books.c.name == warehouse).limit(2)).scalars().all()
        found = named[0] if len(named) == 1 else None
    return _book_row(uow, found, for_update) if found else None


def draw_for_parcel(uow: UnitOfWork, warehouse: str, order_no: str, goods: list[tuple[str, Decimal]]) -> dict:
    """Take a bonded-import parcel's goods (tariff code, quantity) out of the warehouse's book, first
    in, first out over the lots of each tariff code, into the domestic market. Joins the caller's
    transaction and locks the book first, so two workers never draw the same stock. The same order
    again returns its first draw. Raises NotFound (no such book) or InsufficientStock
    (`insufficient_stock`), changing nothing."""
    with uow.transaction():
        book = cbec_book(uow, warehouse, for_update=True)
        if book is None:
            raise not_found("cross-border e-commerce account book", warehouse)
        reference = CBEC_REFERENCE.format(order_no)
        if done := _by_reference(uow, book["id"], reference):
            return done
        stock, lots, items = _stock(uow, book["id"]), _lots(uow, book["id"]), _items(uow, book["id"])
        wanted: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for code, quantity in goods:
            wanted[code] += quantity
        taken: dict[tuple[str, Location], Decimal] = defaultdict(lambda: ZERO)
        lines: list[Line] = []
        for code, quantity in wanted.items():
            pairs = [(lid, loc) for lid, lot in lots.items() if items[lot["item_id"]]["tariff_code"] == code
                     for loc in IN_ZONE_ORDER]
            pool = [model.Available(str(i), stock.balances.get(pair, ZERO) - stock.reserved.get(pair, ZERO)
                                    - taken[pair]) for i, pair in enumerate(pairs)]
            for key, part in model.allocate_fifo(pool, quantity, f"Tariff line {code}"):
                lid, loc = pairs[int(key)]
                lines.append(Line(lid, None, loc, part))
                taken[(lid, loc)] += part
        now = utcnow()
        request_id = _store_request(uow, SYSTEM, book["id"], MoveKind.CBEC_RELEASE, reference, lines,
                                    status="done", reason=f"cross-border e-commerce parcel {order_no}")
        for line in lines:
            _move(uow, SYSTEM, book["id"], line.lot_id, lots[line.lot_id]["item_id"], None, MoveKind.CBEC_RELEASE,
                  line.location, Location.DOMESTIC_MARKET, line.quantity, None, business_day(now), now,
                  f"e-commerce parcel {order_no}", request_id)
        return _by_reference(uow, book["id"], reference) or {}


def return_parcel_goods(uow: UnitOfWork, warehouse: str, order_no: str) -> dict | None:
    """A bonded-import parcel cancelled or returned: the goods it drew go back to where they were
    taken from. Joins the caller's transaction; returning twice changes nothing. None when the
    parcel drew nothing from the book."""
    with uow.transaction() as conn:
        book = cbec_book(uow, warehouse, for_update=True)
        if book is None:
            return None
        row = conn.execute(select(bonded_requests).where(
            bonded_requests.c.book_id == book["id"],
            bonded_requests.c.client_reference == CBEC_REFERENCE.format(order_no))).mappings().first()
        if row is None:
            return None
        if row["status"] == "done":
            lots, now = _lots(uow, book["id"]), utcnow()
            for line in conn.execute(select(bonded_request_lines).where(
                    bonded_request_lines.c.request_id == row["id"])).mappings():
                _move(uow, SYSTEM, book["id"], line["lot_id"], lots[line["lot_id"]]["item_id"], None,
                      MoveKind.CBEC_RETURN, Location.DOMESTIC_MARKET, Location(line["location"]),
                      Decimal(line["quantity"]), None, business_day(now), now,
                      f"e-commerce parcel {order_no} cancelled", row["id"])
            conn.execute(update(bonded_requests).where(bonded_requests.c.id == row["id"])
                         .values(status="returned", done_at=now))
        return _by_reference(uow, book["id"], CBEC_REFERENCE.format(order_no))


# --- the registry asks before withdrawing an enterprise ------------------------------------------------

def _holds_bonded_stock(uow: UnitOfWork, enterprise_id: str) -> list[Problem]:
    held = ZERO
    for book_id in uow.conn.execute(select(bonded_books.c.id).where(
            bonded_books.c.enterprise_id == enterprise_id)).scalars():
        held += model.held_quantity(_stock(uow, book_id).balances)
    if held > 0:
        return [Problem("", "holds_bonded_stock",
                        "The enterprise holds bonded stock; release, re-export or transfer it first.")]
    return []


registry.register_withdrawal_check("bonded_stock", _holds_bonded_stock)


# --- dashboard -----------------------------------------------------------------------------------

def dashboard_figures(uow: UnitOfWork, actor: Actor) -> dict[str, int]:
    """Books visible to the actor and requests waiting for their declaration."""
    with uow.read() as conn:
        ids = _visible_enterprises(uow, actor)
        books = select(bonded_books.c.id)
        if ids is not None:
            books = books.where(bonded_books.c.enterprise_id.in_(ids))
        book_ids = list(conn.execute(books).scalars())
        pending = conn.execute(select(func.count()).select_from(bonded_requests).where(and_(
            bonded_requests.c.book_id.in_(book_ids), bonded_requests.c.status == "pending"))).scalar_one()
        return {"books": len(book_ids), "pending": pending}


def _reader(raw: object, problems: Problems, path: str = "") -> FieldReader:
    if not isinstance(raw, Mapping):
        problems.add(path, "not_an_object", "Send a JSON object.")
        raw = {}
    return FieldReader(raw, path, problems)
