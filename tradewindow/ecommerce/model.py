"""Cross-border e-commerce retail imports (DESIGN.md §4.2, §4.4): the three documents of a parcel
(order from the platform, payment from the payment company, waybill from the logistics company),
their matching, the 70 % tax through the tariff's `cbec` quote, the per-order and per-buyer annual
limits, and the decision. Pure: the tariff comes in through `tariff.model.TariffLookup`.

The order in which the limits are applied is part of the rule: in a batch, a buyer's parcels are
taken in `ordered_at` order (ties by order number), so a result never depends on where a line sits
in a file or on how many workers share the work."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from stdnum.cn import ric

from tradewindow.platform.errors import Problem, Problems, ValidationFailed
from tradewindow.platform.fields import MAX_AMOUNT, FieldReader
from tradewindow.platform.money import FEN, apportion, format_amount
from tradewindow.tariff import model as tariff_model
from tradewindow.tariff.model import CBEC_ANNUAL_LIMIT, CBEC_ORDER_LIMIT, Requirement

ZERO = Decimal(0)
ONE = Decimal(1)
CURRENCIES = frozenset({"CNY"})


class Kind(StrEnum):
    ORDER = "order"
    PAYMENT = "payment"
    WAYBILL = "waybill"


class Decision(StrEnum):
    RELEASE = "release"
    INSPECT = "inspect"
    REJECT = "reject"


class Reason(StrEnum):
    """Why a parcel is not simply released. Stable codes integrators branch on."""

    PAYER_MISMATCH = "payer_mismatch"
    AMOUNT_MISMATCH = "amount_mismatch"
    CONSIGNEE_MISMATCH = "consignee_mismatch"
    NOT_ON_POSITIVE_LIST = "not_on_positive_list"
    UNKNOWN_TARIFF_CODE = "unknown_tariff_code"
    INVALID_BUYER_ID = "invalid_buyer_id"
    TAX_WITHHELD_MISMATCH = "tax_withheld_mismatch"
    ORDER_LIMIT_EXCEEDED = "order_limit_exceeded"
    ANNUAL_LIMIT_EXCEEDED = "annual_limit_exceeded"
    INSUFFICIENT_BONDED_STOCK = "insufficient_bonded_stock"   # bonded import: the warehouse is short
    UNKNOWN_BONDED_WAREHOUSE = "unknown_bonded_warehouse"     # bonded import: no such e-commerce book
    DUPLICATE = "duplicate"                  # a record refused, never a parcel's reason
    RANDOM_INSPECTION = "random_inspection"  # a clean parcel drawn for inspection


REASON_MESSAGES = {
    Reason.PAYER_MISMATCH: "The payer's identity number is not the buyer's.",
    Reason.AMOUNT_MISMATCH: "The amount paid is not goods + freight + tax withheld − discount.",
    Reason.CONSIGNEE_MISMATCH: "The consignee on the waybill is not the one on the order.",
    Reason.NOT_ON_POSITIVE_LIST: "An item is not on the cross-border e-commerce positive list.",
    Reason.UNKNOWN_TARIFF_CODE: "An item names a tariff line that does not exist or is not in force.",
    Reason.INVALID_BUYER_ID: "The buyer's identity number is not a valid resident identity number.",
    Reason.TAX_WITHHELD_MISMATCH: "The tax withheld by the platform differs from the tax computed.",
    Reason.ORDER_LIMIT_EXCEEDED: "The order is over 5,000 CNY and is not one indivisible item.",
    Reason.ANNUAL_LIMIT_EXCEEDED: "The buyer's purchases this year would pass 26,000 CNY.",
    Reason.INSUFFICIENT_BONDED_STOCK: "The bonded warehouse's account book holds too little of the goods.",
    Reason.UNKNOWN_BONDED_WAREHOUSE: "No cross-border e-commerce account book is kept for that bonded warehouse.",
    Reason.RANDOM_INSPECTION: "Drawn for inspection by random sampling.",
}


# --- records -------------------------------------------------------------------------------------

ORDER_FIELDS = frozenset({
    "order_no", "platform_code", "ordered_at", "buyer_id_number", "buyer_name", "consignee_name",
    "consignee_address", "currency", "goods_value", "freight", "discount", "tax_withheld",
    "bonded_warehouse", "items"})
ITEM_FIELDS = frozenset({"tariff_code", "description", "quantity", "unit", "unit_price", "origin"})
PAYMENT_FIELDS = frozenset({"payment_no", "order_no", "payer_id_number", "payer_name", "amount_paid",
                            "paid_at"})
WAYBILL_FIELDS = frozenset({"waybill_no", "order_no", "consignee_name", "consignee_address",
                            "gross_weight_kg", "shipped_at"})
MAX_ITEMS = 100


@dataclass(frozen=True, slots=True)
class OrderItem:
    tariff_code: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    origin: str | None

    @property
    def value(self) -> Decimal:
        return self.quantity * self.unit_price


@dataclass(frozen=True, slots=True)
class Order:
    order_no: str
    platform_code: str
    ordered_at: datetime
    buyer_id_number: str
    buyer_name: str
    consignee_name: str
    consignee_address: str
    currency: str
    goods_value: Decimal
    freight: Decimal
    discount: Decimal
    tax_withheld: Decimal
    items: tuple[OrderItem, ...]
    # Bonded-import mode: the goods wait in this bonded warehouse's e-commerce account book.
    bonded_warehouse: str | None = None

    number = property(lambda self: self.order_no)

    @property
    def customs_value(self) -> Decimal:
        """Goods + freight − discount: what the buyer pays for the goods delivered (GACC 2018
        No. 194: the actual transaction price including freight)."""
        return self.goods_value + self.freight - self.discount

    @property
    def single_indivisible_item(self) -> bool:
        return len(self.items) == 1 and self.items[0].quantity == ONE


@dataclass(frozen=True, slots=True)
class Payment:
    payment_no: str
    order_no: str
    payer_id_number: str
    payer_name: str
    amount_paid: Decimal
    paid_at: datetime

    number = property(lambda self: self.payment_no)


@dataclass(frozen=True, slots=True)
class Waybill:
    waybill_no: str
    order_no: str
    consignee_name: str
    consignee_address: str
    gross_weight_kg: Decimal
    shipped_at: datetime

    number = property(lambda self: self.waybill_no)


Record = Order | Payment | Waybill


class _Reader(FieldReader):
    def money(self, name: str, *, required: bool = False, default: Decimal | None = None) -> Decimal | None:
        if not self.given(name) and default is not None and not required:
            return default
        value = self.amount(name, required=required)
        if value is not None and value != value.quantize(FEN):
            self.add(name, "too_precise", f"{name} is an amount in CNY with at most two decimals.")
            return None
        return value

    def moment(self, name: str) -> datetime | None:
        text = self.text(name, required=True)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            self.add(name, "invalid_datetime",
                     f"{name} is an ISO 8601 date and time with its offset, like 2026-11-11T00:05:00+08:00.")
            return None
        return moment


def _object(raw: object, kind: Kind) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise ValidationFailed([Problem("", "not_an_object", f"An {kind.value} must be a JSON object.")])
    return raw


def parse_order(raw: object) -> Order:
    """Check an order as received; raises ValidationFailed with every problem."""
    return _quick_order(raw) or _read_order(raw)


def _read_order(raw: object) -> Order:
    """The full reading of an order, every problem collected (what `_quick_order` falls back to)."""
    raw = _object(raw, Kind.ORDER)
    problems = Problems()
    r = _Reader(raw, "", problems)
    r.refuse_unknown(ORDER_FIELDS)
    order_no = r.text("order_no", required=True, max_length=64)
    platform_code = r.text("platform_code", required=True, max_length=32)
    ordered_at = r.moment("ordered_at")
    # A wrong identity number is a parcel's reason (`invalid_buyer_id`), not a malformed record:
    # the platform must hear about it through the decision, as customs would say it.
    buyer_id = r.text("buyer_id_number", required=True, max_length=32)
    buyer_name = r.text("buyer_name", required=True, max_length=100)
    consignee_name = r.text("consignee_name", required=True, max_length=100)
    consignee_address = r.text("consignee_address", required=True, max_length=300)
    currency = r.choice("currency", CURRENCIES, required=True)
    goods_value = r.money("goods_value", required=True)
    freight = r.money("freight", default=ZERO)
    discount = r.money("discount", default=ZERO)
    tax_withheld = r.money("tax_withheld", default=ZERO)
    bonded_warehouse = r.text("bonded_warehouse", max_length=64)
    items = [_parse_item(item, f"items[{i}]", problems)
             for i, item in enumerate(r.items("items", required=True, max_items=MAX_ITEMS) or [])]
    if None not in (goods_value, freight, discount) and discount > goods_value + freight:  # type: ignore[operator]
        r.add("discount", "discount_exceeds_value", "The discount is more than goods and freight together.")
    problems.raise_if_any()
    return Order(order_no, platform_code, ordered_at, buyer_id.upper(), buyer_name,  # type: ignore[arg-type,union-attr]
                 consignee_name, consignee_address, currency, goods_value, freight, discount,  # type: ignore[arg-type]
                 tax_withheld, tuple(items), bonded_warehouse)  # type: ignore[arg-type]


def _parse_item(raw: object, path: str, problems: Problems) -> OrderItem | None:
    if not isinstance(raw, Mapping):
        problems.add(path, "not_an_object", "Each item must be an object.")
        return None
    r = _Reader(raw, path, problems)
    before = len(problems.items)
    r.refuse_unknown(ITEM_FIELDS)
    code = r.text("tariff_code", required=True, max_length=20)
    description = r.text("description", required=True, max_length=300)
    quantity = r.amount("quantity", required=True, positive=True)
    unit = r.text("unit", required=True, max_length=20)
    unit_price = r.money("unit_price", required=True)
    origin = r.text("origin")
    if origin is not None and not tariff_model.is_country(origin.upper()):
        r.add("origin", "unknown_country", f"{origin!r} is not an ISO 3166 alpha-2 country code.")
    if len(problems.items) > before:
        return None
    return OrderItem(tariff_model.normalise_tariff_code(code), description, quantity, unit,  # type: ignore[arg-type]
                     unit_price, origin.upper() if origin else None)  # type: ignore[arg-type]


def parse_payment(raw: object) -> Payment:
    return _quick_payment(raw) or _read_payment(raw)


def _read_payment(raw: object) -> Payment:
    raw = _object(raw, Kind.PAYMENT)
    problems = Problems()
    r = _Reader(raw, "", problems)
    r.refuse_unknown(PAYMENT_FIELDS)
    values = (r.text("payment_no", required=True, max_length=64), r.text("order_no", required=True, max_length=64),
              r.text("payer_id_number", required=True, max_length=32),
              r.text("payer_name", required=True, max_length=100), r.money("amount_paid", required=True),
              r.moment("paid_at"))
    problems.raise_if_any()
    payment_no, order_no, payer_id, payer_name, amount, paid_at = values
    return Payment(payment_no, order_no, payer_id.upper(), payer_name, amount, paid_at)  # type: ignore[arg-type,union-attr]


def parse_waybill(raw: object) -> Waybill:
    return _quick_waybill(raw) or _read_waybill(raw)


def _read_waybill(raw: object) -> Waybill:
    raw = _object(raw, Kind.WAYBILL)
    problems = Problems()
    r = _Reader(raw, "", problems)
    r.refuse_unknown(WAYBILL_FIELDS)
    values = (r.text("waybill_no", required=True, max_length=64), r.text("order_no", required=True, max_length=64),
              r.text("consignee_name", required=True, max_length=100),
              r.text("consignee_address", required=True, max_length=300),
              r.amount("gross_weight_kg", required=True, positive=True), r.moment("shipped_at"))
    problems.raise_if_any()
    return Waybill(*values)  # type: ignore[arg-type]


# The quick readings: the same records from well-formed input, in a fraction of the time. Each
# check is the full reading's; on anything it would not accept as is (a problem, an odd type, an
# exception) they give None and the full reading answers, with every problem.

def _q_text(raw: Mapping[str, object], name: str, max_length: int) -> str | None:
    value = raw.get(name)
    if type(value) is not str:
        return None
    value = value.strip()
    return value if value and len(value) <= max_length else None


def _q_money(value: object, positive: bool = False, cents: bool = True) -> Decimal | None:
    if type(value) is not str:
        return None
    number = Decimal(value.strip())
    if not number.is_finite() or number.is_signed() or number >= MAX_AMOUNT or (positive and number == 0) or (
            cents and number != number.quantize(FEN)):
        return None     # the full reading says what is wrong (a negative zero it reads as zero)
    return number


def _q_moment(raw: Mapping[str, object], name: str) -> datetime | None:
    text = _q_text(raw, name, 1 << 30)
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else None


def _q_optional_money(raw: Mapping[str, object], name: str) -> Decimal | None:
    value = raw.get(name)
    return ZERO if value is None else _q_money(value)


def _q_item(raw: object) -> OrderItem | None:
    if type(raw) is not dict or not raw.keys() <= ITEM_FIELDS:
        return None
    code = _q_text(raw, "tariff_code", 20)
    description = _q_text(raw, "description", 300)
    unit = _q_text(raw, "unit", 20)
    quantity = _q_money(raw.get("quantity"), positive=True, cents=False)
    unit_price = _q_money(raw.get("unit_price"))
    origin = raw.get("origin")
    if origin is not None:
        origin = _q_text(raw, "origin", 1 << 30)
        if origin is None or not tariff_model.is_country(origin.upper()):
            return None
        origin = origin.upper()
    if code is None or description is None or unit is None or quantity is None or unit_price is None:
        return None
    return OrderItem(code if code.isdigit() else tariff_model.normalise_tariff_code(code), description, quantity,
                     unit, unit_price, origin)


def _quick_order(raw: object) -> Order | None:
    try:
        if type(raw) is not dict or not raw.keys() <= ORDER_FIELDS:
            return None
        raw_items = raw.get("items")
        if type(raw_items) is not list or not raw_items or len(raw_items) > MAX_ITEMS:
            return None
        items = tuple(_q_item(item) for item in raw_items)
        values = (_q_text(raw, "order_no", 64), _q_text(raw, "platform_code", 32), _q_moment(raw, "ordered_at"),
                  _q_text(raw, "buyer_id_number", 32), _q_text(raw, "buyer_name", 100),
                  _q_text(raw, "consignee_name", 100), _q_text(raw, "consignee_address", 300))
        currency = _q_text(raw, "currency", 1 << 30)
        goods_value = _q_money(raw.get("goods_value"))
        freight = _q_optional_money(raw, "freight")
        discount = _q_optional_money(raw, "discount")
        tax_withheld = _q_optional_money(raw, "tax_withheld")
        bonded_warehouse = raw.get("bonded_warehouse")
        if bonded_warehouse is not None and (bonded_warehouse := _q_text(raw, "bonded_warehouse", 64)) is None:
            return None
        if (None in values or None in items or currency not in CURRENCIES or goods_value is None or freight is None
                or discount is None or tax_withheld is None or discount > goods_value + freight):
            return None
    except Exception:  # noqa: BLE001 - whatever it is, the full reading says it properly
        return None
    order_no, platform_code, ordered_at, buyer_id, buyer_name, consignee_name, consignee_address = values
    return Order(order_no, platform_code, ordered_at, buyer_id.upper(), buyer_name,  # type: ignore[arg-type,union-attr]
                 consignee_name, consignee_address, currency, goods_value, freight, discount,  # type: ignore[arg-type]
                 tax_withheld, items, bonded_warehouse)  # type: ignore[arg-type]


def _quick_payment(raw: object) -> Payment | None:
    try:
        if type(raw) is not dict or not raw.keys() <= PAYMENT_FIELDS:
            return None
        values = (_q_text(raw, "payment_no", 64), _q_text(raw, "order_no", 64), _q_text(raw, "payer_id_number", 32),
                  _q_text(raw, "payer_name", 100), _q_money(raw.get("amount_paid")), _q_moment(raw, "paid_at"))
    except Exception:  # noqa: BLE001 - the full reading says it properly
        return None
    if None in values:
        return None
    payment_no, order_no, payer_id, payer_name, amount, paid_at = values
    return Payment(payment_no, order_no, payer_id.upper(), payer_name, amount, paid_at)  # type: ignore[arg-type,union-attr]


def _quick_waybill(raw: object) -> Waybill | None:
    try:
        if type(raw) is not dict or not raw.keys() <= WAYBILL_FIELDS:
            return None
        values = (_q_text(raw, "waybill_no", 64), _q_text(raw, "order_no", 64), _q_text(raw, "consignee_name", 100),
                  _q_text(raw, "consignee_address", 300),
                  _q_money(raw.get("gross_weight_kg"), positive=True, cents=False), _q_moment(raw, "shipped_at"))
    except Exception:  # noqa: BLE001 - the full reading says it properly
        return None
    if None in values:
        return None
    return Waybill(*values)  # type: ignore[arg-type]


PARSERS = {Kind.ORDER: parse_order, Kind.PAYMENT: parse_payment, Kind.WAYBILL: parse_waybill}
_QUICK = {Kind.ORDER: _quick_order, Kind.PAYMENT: _quick_payment, Kind.WAYBILL: _quick_waybill}


def quick_record(kind: Kind, raw: object) -> Record | None:
    """The quick reading alone: the record `parse_record` gives when `raw` is well formed, None
    when the full reading must say what is wrong. A record it gives was read from text, objects,
    lists and nulls only (every value it takes is checked to be text), never from a number."""
    return _QUICK[kind](raw)


def parse_record(kind: Kind, raw: object) -> Record:
    return PARSERS[kind](raw)


def parse_line(raw: object) -> tuple[Kind, Record]:
    """One line of a batch file: a record with a "kind" field ("order", "payment", "waybill")."""
    raw = dict(_object(raw, Kind.ORDER))
    kind_text = raw.pop("kind", None)
    try:
        kind = Kind(kind_text)
    except ValueError:
        raise ValidationFailed([Problem("kind", "invalid_choice",
                                        "kind is one of: order, payment, waybill.")]) from None
    return kind, parse_record(kind, raw)


def canonical(record: Record) -> dict[str, Any]:
    """The record as stored and compared: decimal strings, ISO times, fields in a fixed order.
    "12.5" and "12.50" are the same amount, so a repeat that writes it differently is still a
    repeat."""
    if type(record) is Order:
        body = {"order_no": record.order_no, "platform_code": record.platform_code,
                "ordered_at": record.ordered_at.isoformat(), "buyer_id_number": record.buyer_id_number,
                "buyer_name": record.buyer_name, "consignee_name": record.consignee_name,
                "consignee_address": record.consignee_address, "currency": record.currency,
                "goods_value": _plain(record.goods_value), "freight": _plain(record.freight),
                "discount": _plain(record.discount), "tax_withheld": _plain(record.tax_withheld),
                "items": [{"tariff_code": i.tariff_code, "description": i.description,
                           "quantity": _plain(i.quantity), "unit": i.unit, "unit_price": _plain(i.unit_price),
                           "origin": i.origin} for i in record.items]}
        # An order without a bonded warehouse hashes as it did before the bonded-import mode existed.
        if record.bonded_warehouse is not None:
            body["bonded_warehouse"] = record.bonded_warehouse
        return body
    if type(record) is Payment:
        return {"payment_no": record.payment_no, "order_no": record.order_no,
                "payer_id_number": record.payer_id_number, "payer_name": record.payer_name,
                "amount_paid": _plain(record.amount_paid), "paid_at": record.paid_at.isoformat()}
    return {"waybill_no": record.waybill_no, "order_no": record.order_no,  # type: ignore[union-attr]
            "consignee_name": record.consignee_name, "consignee_address": record.consignee_address,  # type: ignore[union-attr]
            "gross_weight_kg": _plain(record.gross_weight_kg), "shipped_at": record.shipped_at.isoformat()}  # type: ignore[union-attr]


def _plain(value: Decimal) -> str:
    """The amount without trailing zeros, never in exponent form: format(value.normalize(), "f"),
    from its plain text where that has no exponent and fewer digits than normalize keeps (the
    default context's 28; the code never changes it): a third of the time, and a test holds them
    equal."""
    text = str(value)
    if len(text) > 20 or "E" in text or "N" in text or "n" in text:     # long, exponent, NaN, Infinity
        return format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
_json_string = json.encoder.encode_basestring   # a str as JSON, as the encoder above writes it


def canonical_text(record: Record) -> str:
    """The canonical record as JSON text, keys sorted: what a repeat is compared by. Written field
    by field (a third of the time of encoding `canonical(record)`, which gives the same text:
    a property test holds them equal)."""
    e = _json_string
    if type(record) is Order:
        items = ", ".join(
            f'{{"description": {e(i.description)}, "origin": {"null" if i.origin is None else e(i.origin)}, '
            f'"quantity": "{_plain(i.quantity)}", "tariff_code": {e(i.tariff_code)}, "unit": {e(i.unit)}, '
            f'"unit_price": "{_plain(i.unit_price)}"}}' for i in record.items)
        bonded = "" if record.bonded_warehouse is None else f'"bonded_warehouse": {e(record.bonded_warehouse)}, '
        return (f'{{{bonded}"buyer_id_number": {e(record.buyer_id_number)}, "buyer_name": {e(record.buyer_name)}, '
                f'"consignee_address": {e(record.consignee_address)}, '
                f'"consignee_name": {e(record.consignee_name)}, "currency": {e(record.currency)}, '
                f'"discount": "{_plain(record.discount)}", "freight": "{_plain(record.freight)}", '
                f'"goods_value": "{_plain(record.goods_value)}", "items": [{items}], '
                f'"order_no": {e(record.order_no)}, "ordered_at": "{record.ordered_at.isoformat()}", '
                f'"platform_code": {e(record.platform_code)}, "tax_withheld": "{_plain(record.tax_withheld)}"}}')
    if type(record) is Payment:
        return (f'{{"amount_paid": "{_plain(record.amount_paid)}", "order_no": {e(record.order_no)}, '
                f'"paid_at": "{record.paid_at.isoformat()}", "payer_id_number": {e(record.payer_id_number)}, '
                f'"payer_name": {e(record.payer_name)}, "payment_no": {e(record.payment_no)}}}')
    if type(record) is Waybill:
        return (f'{{"consignee_address": {e(record.consignee_address)}, '
                f'"consignee_name": {e(record.consignee_name)}, '
                f'"gross_weight_kg": "{_plain(record.gross_weight_kg)}", "order_no": {e(record.order_no)}, '
                f'"shipped_at": "{record.shipped_at.isoformat()}", "waybill_no": {e(record.waybill_no)}}}')
    return canonical_text_encoded(record)


def canonical_text_encoded(record: Record) -> str:
    """`canonical(record)` through the JSON encoder: what `canonical_text` writes by hand."""
    return _CANONICAL_JSON.encode(canonical(record))


def stored_canonical_text(body: Mapping[str, Any]) -> str:
    """The canonical text of a stored body (`canonical(record)` as read back, however the JSON
    was spaced when stored): what a record received again is compared with, as
    `canonical_text(record) == stored_canonical_text(body)` — the same content."""
    return _CANONICAL_JSON.encode(body)


# --- personal data -------------------------------------------------------------------------------

_RIC_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


@lru_cache(maxsize=65536)
def valid_buyer_id(number: str) -> bool:
    """A Chinese resident identity number (18 characters, birth date, ISO 7064 check), as
    python-stdnum's `cn.ric` says. Cached: a festival's repeat buyers are checked once. A number
    already in its compact form has its length, check digit and birth date checked here, and its
    birth place (stdnum's region table, the costly part) once per region code and birth year."""
    if not _RIC_SHAPE.fullmatch(number):
        return ric.is_valid(number)       # separators, spaces, lower case: stdnum's own reading
    if number[-1] != ric.calc_check_digit(number):
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return _valid_birth_place(number[:6], number[6:10], number)


_BIRTH_PLACES: dict[tuple[str, str], bool] = {}


def _valid_birth_place(region: str, year: str, number: str) -> bool:
    """Whether stdnum knows the region code in that birth year, asked with a number whose other
    parts are valid (so that `ric.is_valid` can only fail on its birth place), once per pair."""
    found = _BIRTH_PLACES.get((region, year))
    if found is None:
        found = _BIRTH_PLACES[(region, year)] = ric.is_valid(number)
    return found


def mask_id(number: str | None) -> str | None:
    """110105********0022: enough to tell two buyers apart on a page, not enough to be one."""
    if number is None:
        return None
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def mask_phone(number: str | None) -> str | None:
    if number is None:
        return None
    digits = number.strip()
    return digits[:3] + "*" * max(len(digits) - 7, 0) + digits[-4:] if len(digits) > 7 else "*" * len(digits)


def limit_year(order: Order, zone: ZoneInfo) -> int:
    """The calendar year (in the zone's time) whose limit the order counts against."""
    return order.ordered_at.astimezone(zone).year


# --- assessment ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Assessment:
    """What the three documents and the tariff say about a parcel before its buyer's year."""

    reasons: tuple[Reason, ...]
    customs_value: Decimal
    duty: Decimal = ZERO
    consumption_tax: Decimal = ZERO
    vat: Decimal = ZERO
    taxed: bool = False                     # False when the tariff could not tax it
    single_item_over_limit: bool = False

    @property
    def total_tax(self) -> Decimal:
        return self.duty + self.consumption_tax + self.vat


_REASON_RANK = {reason: rank for rank, reason in enumerate(Reason)}


def _in_order(reasons: set[Reason]) -> tuple[Reason, ...]:
    """Reasons in their codes' order (the order of `Reason`)."""
    return tuple(sorted(reasons, key=_REASON_RANK.__getitem__)) if reasons else ()


def _same_text(a: str, b: str) -> bool:
    return a == b or " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def quote_request(order: Order, on_date: Any) -> dict[str, Any]:
    """The tariff quote request of an order: regime cbec, the customs value spread over the items
    in whole fen by their value (largest remainder, so the parts add up to the whole)."""
    shares = apportion(order.customs_value, [item.value for item in order.items])
    items = []
    for item, share in zip(order.items, shares, strict=True):
        quoted: dict[str, Any] = {"tariff_code": item.tariff_code, "currency": "CNY",
                                  "customs_value": str(share), "quantity": str(item.quantity)}
        if item.origin:
            quoted["origin"] = item.origin
        items.append(quoted)
    return {"regime": "cbec", "date": on_date.isoformat(), "items": items}


def quote_order(order: Order, on_date: date, lookup: tariff_model.TariffLookup) -> tariff_model.Quote:
    """The tariff quote of an order (raises ValidationFailed when the tariff cannot tax it):
    its figures; the items' explanations, which no caller here reads, are left empty."""
    request = tariff_model.parse_quote_request(quote_request(order, on_date), lookup, on_date)
    return tariff_model.quote(request, lookup.agreements(), explain=False)


def assess(order: Order, payment: Payment, waybill: Waybill, lookup: tariff_model.TariffLookup,
           zone: ZoneInfo, quoter: Callable[[Order, date, Any], tariff_model.Quote] = quote_order) -> Assessment:
    """Match the three documents and tax the order on the rates in force on its order day.
    Every reason found is reported, not only the first. `quoter` is `quote_order` or a cache
    in front of it (the batch path: one quote per distinct request)."""
    reasons: set[Reason] = set()
    on_date = order.ordered_at.astimezone(zone).date()
    if not valid_buyer_id(order.buyer_id_number):
        reasons.add(Reason.INVALID_BUYER_ID)
    if payment.payer_id_number != order.buyer_id_number:
        reasons.add(Reason.PAYER_MISMATCH)
    if payment.amount_paid != order.goods_value + order.freight + order.tax_withheld - order.discount:
        reasons.add(Reason.AMOUNT_MISMATCH)
    if not (_same_text(order.consignee_name, waybill.consignee_name)
            and _same_text(order.consignee_address, waybill.consignee_address)):
        reasons.add(Reason.CONSIGNEE_MISMATCH)
    for item in order.items:
        line = lookup.line(item.tariff_code) if tariff_model.TARIFF_CODE.match(item.tariff_code) else None
        if line is None or not line.line.in_force(on_date):
            reasons.add(Reason.UNKNOWN_TARIFF_CODE)
        elif Requirement.CBEC_POSITIVE_LIST not in line.in_force(on_date).requirements:
            reasons.add(Reason.NOT_ON_POSITIVE_LIST)
    value = order.customs_value
    if value > CBEC_ORDER_LIMIT and not order.single_indivisible_item:
        reasons.add(Reason.ORDER_LIMIT_EXCEEDED)
    if reasons & {Reason.UNKNOWN_TARIFF_CODE, Reason.ORDER_LIMIT_EXCEEDED}:
        return Assessment(_in_order(reasons), value)
    try:
        quote = quoter(order, on_date, lookup)
    except ValidationFailed as refused:
        codes = {p.code for p in refused.problems}
        reasons.add(Reason.ORDER_LIMIT_EXCEEDED if "cbec_order_limit_exceeded" in codes
                    else Reason.UNKNOWN_TARIFF_CODE)   # no rate in force: the line cannot tax it
        return Assessment(_in_order(reasons), value)
    totals = quote.totals
    if order.tax_withheld != totals.total:
        reasons.add(Reason.TAX_WITHHELD_MISMATCH)
    return Assessment(_in_order(reasons), value, totals.duty,
                      totals.consumption_tax, totals.vat, True, quote.cbec_single_item_over_limit)


# --- limits and the decision ---------------------------------------------------------------------

_TWO_TO_64 = Decimal(2**64)


@dataclass(frozen=True, slots=True)
class Sampling:
    """Random inspection of clean parcels: a share drawn by a seeded hash of the order number, so
    the same parcel is drawn (or not) whatever the order of arrival or the number of workers."""

    rate: Decimal = Decimal("0.01")
    seed: str = "tradewindow"

    def draws(self, order_no: str) -> bool:
        if self.rate <= 0:
            return False
        digest = hashlib.sha256(f"{self.seed}:{order_no}".encode()).digest()
        return Decimal(int.from_bytes(digest[:8], "big")) / _TWO_TO_64 < self.rate


NO_SAMPLING = Sampling(rate=ZERO)


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    reasons: tuple[Reason, ...]
    counted: Decimal               # what the parcel adds to its buyer's year
    year_total_after: Decimal


def within_annual_limit(year_total: Decimal, value: Decimal) -> bool:
    """26,000.00 exactly is within the limit; one fen more is not."""
    return year_total + value <= CBEC_ANNUAL_LIMIT


def decide(assessment: Assessment, year_total: Decimal, drawn: bool) -> Outcome:
    """Reject on any reason; otherwise the annual limit; otherwise release, or inspect when drawn.
    Only released and inspected parcels count toward the buyer's year."""
    if assessment.reasons:
        return Outcome(Decision.REJECT, assessment.reasons, ZERO, year_total)
    if not within_annual_limit(year_total, assessment.customs_value):
        return Outcome(Decision.REJECT, (Reason.ANNUAL_LIMIT_EXCEEDED,), ZERO, year_total)
    after = year_total + assessment.customs_value
    if drawn:
        return Outcome(Decision.INSPECT, (Reason.RANDOM_INSPECTION,), assessment.customs_value, after)
    return Outcome(Decision.RELEASE, (), assessment.customs_value, after)


def without_bonded_stock(outcome: Outcome, year_total: Decimal, reason: Reason) -> Outcome:
    """A parcel that would be released or inspected, but whose bonded warehouse cannot give its
    goods: refused, and nothing counts toward the buyer's year."""
    return Outcome(Decision.REJECT, (reason,), ZERO, year_total)


def batch_key(buyer_id_number: str, ordered_at: datetime, order_no: str) -> tuple[str, datetime, str]:
    """The order in which a batch applies limits: per buyer, by ordered_at, ties by order number."""
    return (buyer_id_number, ordered_at, order_no)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A parcel ready for its limit check (for batch planning and its property tests)."""

    order_no: str
    buyer_id_number: str
    ordered_at: datetime
    assessment: Assessment
    year: int


def decide_batch(candidates: Iterable[Candidate], year_totals: Mapping[tuple[str, int], Decimal] | None = None,
                 sampling: Sampling = NO_SAMPLING) -> dict[str, Outcome]:
    """Decide a batch in its rule order, starting from the buyers' totals so far."""
    totals: dict[tuple[str, int], Decimal] = dict(year_totals or {})
    outcomes: dict[str, Outcome] = {}
    for c in sorted(candidates, key=lambda c: batch_key(c.buyer_id_number, c.ordered_at, c.order_no)):
        key = (c.buyer_id_number, c.year)
        outcome = decide(c.assessment, totals.get(key, ZERO), sampling.draws(c.order_no))
        totals[key] = outcome.year_total_after
        outcomes[c.order_no] = outcome
    return outcomes


@dataclass
class BatchSummary:
    """What a batch did: records by kind and outcome, refused lines, parcels decided."""

    lines: int = 0
    accepted: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in Kind})
    repeated: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    decisions: dict[str, int] = field(default_factory=lambda: {d.value: 0 for d in Decision})
    reasons: dict[str, int] = field(default_factory=dict)
    total_tax: Decimal = ZERO

    def count_outcome(self, outcome: Outcome, tax: Decimal) -> None:
        self.decisions[outcome.decision.value] += 1
        for reason in outcome.reasons:
            self.reasons[reason.value] = self.reasons.get(reason.value, 0) + 1
        if outcome.decision is not Decision.REJECT:
            self.total_tax += tax

    def as_dict(self, refused_limit: int = 1000) -> dict[str, Any]:
        return {"lines": self.lines, "accepted": self.accepted, "repeated": self.repeated,
                "refused": len(self.refused), "refused_lines": self.refused[:refused_limit],
                "parcels_decided": sum(self.decisions.values()), "decisions": self.decisions,
                "reasons": dict(sorted(self.reasons.items())), "total_tax": format_amount(self.total_tax)}
