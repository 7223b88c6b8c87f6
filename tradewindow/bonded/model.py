"""Bonded account books, pure (DESIGN.md §4.3): locations, moves, balances derived from moves,
FIFO allocation, serial numbers (VIN, ISO 6346 containers), bills of materials, stocktaking
differences and the reconciliation of a book over a period.

Nothing here is ever edited in place: the book is the list of its moves, and every balance is a
sum over that list (as in Odoo's stock moves). A move that would take more than a location holds
is refused with `insufficient_stock`, naming what is there."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from stdnum import iso6346
from stdnum.exceptions import ValidationError

from tradewindow.platform.errors import Conflict, Problem, Problems

ZERO = Decimal(0)
ONE = Decimal(1)


class BookKind(StrEnum):
    BONDED_LOGISTICS = "bonded_logistics"
    PROCESSING_TRADE = "processing_trade"
    BONDED_EXHIBITION = "bonded_exhibition"
    CBEC_BONDED_IMPORT = "cbec_bonded_import"


class Location(StrEnum):
    ABROAD = "abroad"
    BONDED_STORAGE = "bonded_storage"
    BONDED_EXHIBITION = "bonded_exhibition"
    PROCESSING = "processing"
    DOMESTIC_MARKET = "domestic_market"      # duty paid: left the book
    REEXPORTED = "reexported"
    OTHER_ZONE = "other_zone"
    DESTROYED = "destroyed"                  # under customs supervision
    TEMPORARILY_OUT = "temporarily_out"      # repair or exhibition outside, with a return deadline
    # Virtual, like Odoo's "inventory adjustment" location: where a stocktaking shortage goes and
    # an overage comes from, so that an adjustment is a move like any other.
    STOCKTAKING = "stocktaking"
    # Virtual, like Odoo's "production" location: materials consumed by a processing order go
    # into it, the finished goods come out of it.
    PRODUCTION = "production"


# Goods the book still answers for: still bonded, duty suspended. Temporarily-out goods count:
# they must come back (or be declared) by their deadline.
HELD = frozenset({Location.BONDED_STORAGE, Location.BONDED_EXHIBITION, Location.PROCESSING,
                  Location.TEMPORARILY_OUT})
# Held and inside the zone: what a release, re-export, transfer or destruction may take from.
IN_ZONE = frozenset({Location.BONDED_STORAGE, Location.BONDED_EXHIBITION, Location.PROCESSING})


class MoveKind(StrEnum):
    ENTRY = "entry"                          # bonded_entry declaration released
    RELEASE = "release"                      # bonded_release declaration released: domestic market
    REEXPORT = "reexport"                    # reexport declaration released
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    DESTRUCTION = "destruction"
    TEMPORARY_OUT = "temporary_out"
    TEMPORARY_RETURN = "temporary_return"
    RELOCATION = "relocation"                # storage <-> exhibition <-> processing, inside the zone
    ADJUSTMENT = "adjustment"                # stocktaking difference
    CONSUMPTION = "consumption"              # processing order: materials used up
    PRODUCTION = "production"                # processing order: finished goods made
    CBEC_RELEASE = "cbec_release"            # a bonded-import e-commerce parcel released or inspected
    CBEC_RETURN = "cbec_return"              # that parcel cancelled or returned: its goods come back


# How the reconciliation report groups moves that cross the book's boundary.
RECEIPT_KINDS = frozenset({MoveKind.ENTRY, MoveKind.TRANSFER_IN, MoveKind.PRODUCTION, MoveKind.CBEC_RETURN})
REMOVAL_KINDS = frozenset({MoveKind.RELEASE, MoveKind.REEXPORT, MoveKind.TRANSFER_OUT,
                           MoveKind.DESTRUCTION, MoveKind.CONSUMPTION, MoveKind.CBEC_RELEASE})


# --- serial numbers --------------------------------------------------------------------------------

VIN_CHARACTERS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"     # ISO 3779: no I, O or Q
_VIN_VALUES = {**{str(d): d for d in range(10)},
               **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
               **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
               **dict(zip("STUVWXYZ", range(2, 10), strict=True))}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# Regions whose VINs carry a mandatory check digit in position 9, by the first character of the
# world manufacturer identifier: North America (1-5; US 49 CFR 565.15, Canada CMVSR) and China
# (L; GB 16735). European and most Asian makers do not compute one (ISO 3779 leaves position 9
# free), so a German or Japanese VIN is checked for length and alphabet only. python-stdnum has no
# VIN module in the version we pin, so the 49 CFR 565 transliteration and weights are here.
VIN_CHECK_DIGIT_REGIONS = frozenset("12345L")


def vin_check_digit(vin: str) -> str:
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def vin_problem(text: str) -> Problem | None:
    """None when `text` is a valid VIN (already upper-cased and stripped), else what is wrong."""
    if len(text) != 17:
        return Problem("vin", "invalid_vin", f"A VIN has 17 characters; {text!r} has {len(text)}.")
    if bad := sorted({c for c in text if c not in VIN_CHARACTERS}):
        return Problem("vin", "invalid_vin",
                       f"A VIN uses digits and the letters other than I, O and Q; {text!r} has {''.join(bad)}.")
    if text[0] in VIN_CHECK_DIGIT_REGIONS and text[8] != vin_check_digit(text):
        return Problem("vin", "invalid_vin_check_digit",
                       f"The check digit (9th character) of {text} should be {vin_check_digit(text)}.")
    return None


def normalise_serial(text: str) -> str:
    return "".join(text.split()).upper()


def container_problem(text: str) -> Problem | None:
    try:
        iso6346.validate(text)
    except ValidationError:
        return Problem("container", "invalid_container_number",
                       f"{text!r} is not an ISO 6346 container number (owner code, serial, check digit).")
    return None


# --- moves and balances ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Move:
    lot_id: str
    from_location: Location
    to_location: Location
    quantity: Decimal
    kind: MoveKind
    unit_id: str | None = None
    day: date | None = None
    item_id: str | None = None


Balances = dict[tuple[str, Location], Decimal]


def balances(moves: Iterable[Move]) -> Balances:
    """Quantity per (lot, location): what came in minus what went out. Locations outside the book
    (abroad, stocktaking) are sources and sinks, so they go negative; that is how they balance."""
    result: dict[tuple[str, Location], Decimal] = defaultdict(lambda: ZERO)
    for move in moves:
        result[(move.lot_id, move.from_location)] -= move.quantity
        result[(move.lot_id, move.to_location)] += move.quantity
    return {key: value for key, value in result.items() if value != 0}


def unit_locations(moves: Iterable[Move]) -> dict[str, Location]:
    """Where each serialised unit is: the destination of its last move."""
    where: dict[str, Location] = {}
    for move in moves:
        if move.unit_id is not None:
            where[move.unit_id] = move.to_location
    return where


def held_quantity(balance: Mapping[tuple[str, Location], Decimal], lot_id: str | None = None) -> Decimal:
    return sum((q for (lot, loc), q in balance.items() if loc in HELD and (lot_id is None or lot == lot_id)),
               ZERO)


class InsufficientStock(Conflict):
    """A move would take more than the location holds (after what is reserved for pending
    declarations). 409, code `insufficient_stock`."""

    def __init__(self, what: str, location: str, available: Decimal, asked: Decimal,
                 reserved: Decimal = ZERO) -> None:
        held = f"{_plain(available)} available at {location}"
        if reserved:
            held += f" ({_plain(reserved)} more reserved for pending declarations)"
        super().__init__(f"{what} has {held}; {_plain(asked)} asked.", "insufficient_stock", "quantity")
        self.available, self.asked = available, asked


def check_available(what: str, location: Location, on_hand: Decimal, reserved: Decimal,
                    quantity: Decimal) -> None:
    """Refuse a move (or reservation) of `quantity` from a location that holds `on_hand`, of
    which `reserved` is promised to pending declarations."""
    if quantity <= 0:
        raise Conflict("A move takes a positive quantity.", "not_positive", "quantity")
    if quantity > on_hand - reserved:
        raise InsufficientStock(what, location.value, max(on_hand - reserved, ZERO), quantity, reserved)


@dataclass(frozen=True, slots=True)
class Available:
    lot_id: str
    quantity: Decimal             # on hand minus reserved, at one location


def allocate_fifo(lots: Sequence[Available], quantity: Decimal, what: str = "The item",
                  location: Location = Location.BONDED_STORAGE) -> list[tuple[str, Decimal]]:
    """Take `quantity` from lots in the order given (oldest first: first in, first out).
    Refuses the whole request when the lots together hold less."""
    total = sum((lot.quantity for lot in lots if lot.quantity > 0), ZERO)
    if quantity <= 0:
        raise Conflict("A move takes a positive quantity.", "not_positive", "quantity")
    if quantity > total:
        raise InsufficientStock(what, location.value, total, quantity)
    taken: list[tuple[str, Decimal]] = []
    left = quantity
    for lot in lots:
        if left == 0:
            break
        if lot.quantity <= 0:
            continue
        part = min(lot.quantity, left)
        taken.append((lot.lot_id, part))
        left -= part
    return taken


# --- processing trade ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BillOfMaterials:
    """How much of a material one unit of a finished item consumes (GACC processing-trade
    "unit consumption" standard): net consumption is what ends up in the product, the process
    loss rate what is lost making it."""

    finished_item_id: str
    material_item_id: str
    net_consumption: Decimal
    loss_rate: Decimal                       # 0 <= rate < 1
    valid_from: date
    valid_to: date | None = None

    def __post_init__(self) -> None:
        if not ZERO <= self.loss_rate < ONE:
            raise ValueError("the process loss rate is a fraction below 1")
        if self.net_consumption <= 0:
            raise ValueError("net consumption is positive")

    @property
    def unit_consumption(self) -> Decimal:
        """unit consumption = net consumption / (1 − process loss rate)."""
        return self.net_consumption / (ONE - self.loss_rate)

    def in_force(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class Consumption:
    allowed: Decimal          # finished quantity × unit consumption
    used: Decimal
    taxable_excess: Decimal   # used beyond the allowance: treated as entering the domestic market


QUANTITY_STEP = Decimal("0.001")


def consumption(bom: BillOfMaterials, finished_quantity: Decimal, used: Decimal) -> Consumption:
    allowed = finished_quantity * bom.unit_consumption
    return Consumption(allowed, used, max(used - allowed, ZERO))


def booked_consumption(bom: BillOfMaterials, finished_quantity: Decimal, used: Decimal | None) -> Consumption:
    """What a processing order books: the allowance to the thousandth (half up), the quantity used
    (the allowance when not given) and the excess over the allowance, which is taxable."""
    allowed = (finished_quantity * bom.unit_consumption).quantize(QUANTITY_STEP, ROUND_HALF_UP)
    used = allowed if used is None else used
    return Consumption(allowed, used, max(used - allowed, ZERO))


# --- stocktaking ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StockDifference:
    item_id: str
    book_quantity: Decimal
    counted: Decimal

    @property
    def difference(self) -> Decimal:
        return self.counted - self.book_quantity

    @property
    def kind(self) -> str:
        return "shortage" if self.difference < 0 else "overage" if self.difference > 0 else "agrees"


def stock_differences(book: Mapping[str, Decimal], counted: Mapping[str, Decimal]) -> list[StockDifference]:
    """Book against count for every item counted (an item not counted is not judged)."""
    return [StockDifference(item_id, book.get(item_id, ZERO), quantity)
            for item_id, quantity in sorted(counted.items())]


# --- reconciliation --------------------------------------------------------------------------------

@dataclass
class ReconciliationRow:
    item_id: str
    opening: Decimal = ZERO
    receipts: Decimal = ZERO
    removals: dict[str, Decimal] | None = None
    adjustments: Decimal = ZERO
    closing: Decimal = ZERO

    @property
    def removed(self) -> Decimal:
        return sum((self.removals or {}).values(), ZERO)

    @property
    def balances(self) -> bool:
        return self.closing == self.opening + self.receipts - self.removed + self.adjustments


def reconcile(moves: Iterable[Move], start: date, end: date) -> list[ReconciliationRow]:
    """Per item over [start, end] (business days, inclusive): opening held balance, receipts,
    removals by kind, stocktaking adjustments (signed) and the closing held balance. Moves between
    held locations (storage to exhibition, temporarily out and back) stay inside the book."""
    rows: dict[str, ReconciliationRow] = {}
    for move in moves:
        assert move.day is not None and move.item_id is not None, "reconciliation needs dated, itemised moves"
        if move.day > end:
            continue
        row = rows.setdefault(move.item_id, ReconciliationRow(move.item_id, removals={}))
        delta = _held_delta(move)
        row.closing += delta              # counted on its own, so the report can prove it balances
        if move.day < start:
            row.opening += delta
            continue
        if delta == 0:
            continue
        if move.kind is MoveKind.ADJUSTMENT:
            row.adjustments += delta
        elif delta > 0:
            row.receipts += delta
        else:
            assert row.removals is not None
            row.removals[move.kind.value] = row.removals.get(move.kind.value, ZERO) - delta
    return [rows[k] for k in sorted(rows)]


def _held_delta(move: Move) -> Decimal:
    return ((move.quantity if move.to_location in HELD else ZERO)
            - (move.quantity if move.from_location in HELD else ZERO))


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def quantity_text(value: Decimal) -> str:
    """Quantities leave the system as plain decimal strings ("1", "12.5")."""
    return _plain(value) if value != 0 else "0"


# --- bulk admission of vehicles ------------------------------------------------------------------

SERIAL_CSV_COLUMNS = ("line", "serial")


def serials_from_csv(text: str) -> tuple[dict[str, list[str]], Problems]:
    """A CSV of the vehicles (or containers) of a bonded-entry declaration, one per row:
    `line` (the declaration's item line number) and `serial` (VIN or container number). Returns
    the serials by line, as admission takes them, and every problem of the file (the serials
    themselves are checked on admission)."""
    import csv
    import io

    problems = Problems()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in SERIAL_CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        problems.add("header", "missing_column", f"The file needs the column(s): {', '.join(missing)}.")
        return {}, problems
    serials: dict[str, list[str]] = {}
    for number, row in enumerate(reader, start=2):
        line, serial = (row.get("line") or "").strip(), (row.get("serial") or "").strip().upper()
        if not line.isdigit():
            problems.add(f"rows[{number}].line", "invalid_line", "line is the declaration's item line number.")
        if not serial:
            problems.add(f"rows[{number}].serial", "required", "Each row names a VIN or container number.")
        if line.isdigit() and serial:
            serials.setdefault(str(int(line)), []).append(serial)
    return serials, problems
