"""The demo's cross-border e-commerce bonded warehouse (bonded-import mode, "1210"): Yu-Ou
E-commerce keeps a cbec_bonded_import account book in the Cuntan bonded port area, stocked with
milk powder and face cream from released bonded-entry declarations; shoppers' parcels naming the
warehouse take their goods from it when customs releases them, one order finds the stock short,
and one parcel is returned (its goods go back). All through the real services, clock set back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from stdnum.cn import ric

from tradewindow.bonded import service as bonded
from tradewindow.customs import service as customs
from tradewindow.demo_bonded import _clear
from tradewindow.ecommerce import model, service
from tradewindow.platform.auth import Actor
from tradewindow.platform.db import UnitOfWork, clock_at
from tradewindow.platform.settings import get_settings
from tradewindow.tariff import service as tariff


def _resident(body: str) -> str:
    """A made-up resident identity number with its ISO 7064 check character."""
    return body + ric.calc_check_digit(body + "0")   # it reads the first 17 of 18 characters


BOOK_NAME = "Cuntan cross-border e-commerce warehouse"
# (tariff code, description, origin, kilograms, value in USD), one bonded-entry declaration each.
STOCK = [
    ("04022100", "Whole milk powder, 1 kg cans", "NZ", Decimal(400), Decimal("4800.00")),
    ("33049900", "Face cream, 50 ml jars (0.1 kg)", "FR", Decimal("0.5"), Decimal("150.00")),
]
# (buyer's identity number, name, tariff code, description, kilograms, price in CNY per kg or per
# 0.1 kg jar); the last order asks for more face cream than is left.
SHOPPERS = [
    (_resident("11010519900307001"), "刘洋", "04022100", "Whole milk powder 1 kg", "2", "198.00"),
    (_resident("11010519851224002"), "陈静", "04022100", "Whole milk powder 1 kg", "3", "189.00"),
    (_resident("11010519920815001"), "张伟", "33049900", "Face cream 50 ml", "0.2", "690.00"),
    (_resident("11010519880330004"), "王芳", "04022100", "Whole milk powder 1 kg", "1", "199.00"),
    (_resident("11010519950707001"), "李娜", "33049900", "Face cream 50 ml", "0.1", "720.00"),
    (_resident("11010519900102001"), "王小明", "33049900", "Face cream 50 ml", "0.3", "720.00"),
]


def _withheld(uow: UnitOfWork, order: dict, ordered_at: datetime) -> Decimal:
    """The tax the platform withholds: the parcel's own figure (this platform computes it right)."""
    parsed = model.parse_order(order)
    payment = model.Payment("-", parsed.order_no, parsed.buyer_id_number, parsed.buyer_name, parsed.goods_value,
                            ordered_at)
    waybill = model.Waybill("-", parsed.order_no, parsed.consignee_name, parsed.consignee_address, Decimal(1),
                            ordered_at)
    with uow.read():
        lookup = tariff.tariff_lookup(uow)
        return model.assess(parsed, payment, waybill, lookup, ZoneInfo(get_settings().time_zone)).total_tax


def load_demo_cbec_bonded(engine: Engine, actors: dict[str, Actor], now: datetime | None = None) -> dict:
    """Open the book, admit the goods, then clear a day of bonded-import parcels. Returns the book."""
    now = now or datetime.now(UTC)
    keeper, uow = actors["bonded"], UnitOfWork(engine)
    with clock_at(now - timedelta(days=30)):
        book = bonded.open_book(uow, keeper, {"kind": "cbec_bonded_import", "name": BOOK_NAME})
    for number, (code, description, origin, kilograms, value) in enumerate(STOCK, 1):
        at = now - timedelta(days=25 - 3 * number)
        body = {"client_reference": f"DEMO-CBEC-BE-{number:02d}", "type": "bonded_entry", "customs_office": "8012",
                "transport_mode": "air", "transport_document": f"AWB-784-{number:08d}", "incoterm": "CIF",
                "currency": "USD", "country_of_dispatch": origin, "invoice_total": str(value),
                "items": [{"tariff_code": code, "description": description, "origin": origin,
                           "quantity": str(kilograms), "unit": "KGM", "net_mass_kg": str(kilograms),
                           "gross_mass_kg": str(kilograms * Decimal("1.2")), "value": str(value)}]}
        with clock_at(at):
            declaration = customs.lodge_declaration(uow, keeper, body).declaration
        declaration = _clear(engine, {**actors, "trader": keeper}, declaration, at + timedelta(hours=4))
        with clock_at(at + timedelta(hours=6)):
            bonded.admit_entry(uow, keeper, book["id"], {"declaration": declaration["id"]})
    day = now - timedelta(days=2)
    orders = []
    for n, (buyer, name, code, description, quantity, price) in enumerate(SHOPPERS, 1):
        jar = Decimal("0.1") if code == "33049900" else Decimal(1)
        goods = (Decimal(price) * Decimal(quantity) / jar).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        ordered_at = day + timedelta(minutes=17 * n)
        order = {"order_no": f"YUOU-BW-{day:%Y%m%d}-{n:04d}", "platform_code": "91500144E490BBED2Q",
                 "ordered_at": ordered_at.isoformat(), "buyer_id_number": buyer, "buyer_name": name,
                 "consignee_name": name, "consignee_address": f"重庆市渝北区金开大道{100 + n}号", "currency": "CNY",
                 "goods_value": str(goods), "freight": "0", "discount": "0", "tax_withheld": "0",
                 "bonded_warehouse": BOOK_NAME,
                 "items": [{"tariff_code": code, "description": description, "quantity": quantity, "unit": "kg",
                            "unit_price": str((goods / Decimal(quantity)).quantize(Decimal("0.01"))),
                            "origin": "NZ" if code == "04022100" else "FR"}]}
        orders.append((order, ordered_at))
    sender = {"order": actors["platform"], "payment": actors["payment"], "logistics": actors["logistics"]}
    for order, ordered_at in orders:
        with clock_at(ordered_at):
            order["tax_withheld"] = str(tax := _withheld(uow, order, ordered_at))
            service.submit(uow, sender["order"], model.Kind.ORDER, order)
            service.submit(uow, sender["payment"], model.Kind.PAYMENT, {
                "payment_no": f"CBP-{order['order_no']}", "order_no": order["order_no"],
                "payer_id_number": order["buyer_id_number"], "payer_name": order["buyer_name"],
                "amount_paid": str(Decimal(order["goods_value"]) + tax), "paid_at": ordered_at.isoformat()})
        with clock_at(ordered_at + timedelta(hours=3)):
            service.submit(uow, sender["logistics"], model.Kind.WAYBILL, {
                "waybill_no": f"YX{order['order_no'][-12:].replace('-', '')}", "order_no": order["order_no"],
                "consignee_name": order["consignee_name"], "consignee_address": order["consignee_address"],
                "gross_weight_kg": "1.5", "shipped_at": (ordered_at + timedelta(hours=3)).isoformat()})
    with clock_at(now - timedelta(days=1)):
        service.cancel_parcel(uow, actors["platform"], orders[3][0]["order_no"], "Returned unopened by the buyer")
    return book
