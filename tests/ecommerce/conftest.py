"""E-commerce fixtures: the demo tariff, a platform, a payment company and a logistics company
(and a second platform for tenancy), and builders of the three documents of a parcel."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from stdnum.cn import ric

from tests.conftest import PASSWORD, USCC, enterprise_input
from tradewindow.ecommerce import model
from tradewindow.platform.auth import SYSTEM, Actor, Role
from tradewindow.registry import service as registry
from tradewindow.tariff import service as tariff

CBEC_USCC = {
    "platform": USCC["spare"], "payment": USCC["spare2"], "logistics": USCC["spare3"],
    "other_platform": "91500107MA5U8Q3K2D", "other_logistics": "91500108MA5U8Q3K2U",
}
NO_SAMPLING = model.NO_SAMPLING


def resident_id(n: int) -> str:
    """A valid, made-up resident identity number (Beijing Chaoyang district, born 1990)."""
    body = f"110105{19900101 + n % 28:08d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")   # it reads the first 17 of 18 characters


BUYER = resident_id(1)
OTHER_BUYER = resident_id(2)


def fen(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def milk_tax(value: Decimal) -> Decimal:
    """Milk powder 04022100: duty 0, no consumption tax, VAT 9 % × 70 %."""
    return fen(fen(value * Decimal("0.09")) * Decimal("0.7"))


_numbers = itertools.count(1)


class Parcel:
    """The three documents of one consistent, clean parcel; tests spoil what they test."""

    def __init__(self, order_no: str | None = None, buyer: str = BUYER, value: str = "300.00",
                 code: str = "04022100", quantity: str = "1", freight: str = "0", discount: str = "0",
                 ordered_at: str = "2026-11-11T00:05:00+08:00", tax_withheld: str | None = None) -> None:
        n = next(_numbers)
        self.order_no = order_no or f"ORD-{n:06d}"
        goods = Decimal(value)
        customs_value = goods + Decimal(freight) - Decimal(discount)
        tax = Decimal(tax_withheld) if tax_withheld is not None else milk_tax(customs_value)
        self.order = {
            "order_no": self.order_no, "platform_code": CBEC_USCC["platform"], "ordered_at": ordered_at,
            "buyer_id_number": buyer, "buyer_name": "王小明", "consignee_name": "王小明",
            "consignee_address": "重庆市渝中区解放碑1号", "currency": "CNY", "goods_value": str(goods),
            "freight": freight, "discount": discount, "tax_withheld": str(tax),
            "items": [{"tariff_code": code, "description": "Whole milk powder 900 g", "quantity": quantity,
                       "unit": "can", "unit_price": str(fen(goods / Decimal(quantity))), "origin": "NZ"}],
        }
        self.payment = {
            "payment_no": f"PAY-{self.order_no}", "order_no": self.order_no, "payer_id_number": buyer,
            "payer_name": "王小明", "amount_paid": str(customs_value + tax),
            "paid_at": ordered_at,
        }
        self.waybill = {
            "waybill_no": f"WB-{self.order_no}", "order_no": self.order_no, "consignee_name": "王小明",
            "consignee_address": "重庆市渝中区解放碑1号", "gross_weight_kg": "1.1",
            "shipped_at": "2026-11-12T10:00:00+08:00",
        }

    def lines(self) -> list[dict]:
        return [{"kind": "order", **self.order}, {"kind": "payment", **self.payment},
                {"kind": "waybill", **self.waybill}]


@pytest.fixture
def cbec_world(world):
    """`world` plus the demo tariff and the e-commerce parties, each with one user."""
    tariff.load_demo_schedule(world.uow, Actor(user_id=None, username="fixture", role=Role.CUSTOMS))
    return add_cbec_parties(world)


def add_cbec_parties(world):
    """The platform, payment and logistics companies (and a second platform and logistics
    company), each with one user, added to a world that has the tariff already."""
    zone = Actor(user_id=None, username="fixture", role=Role.ZONE, agency_id=world["zone"].agency_id)
    for name, kind in (("platform", "platform"), ("payment", "payment"), ("logistics", "logistics"),
                       ("other_platform", "platform"), ("other_logistics", "logistics")):
        world.enterprises[name] = registry.register_enterprise(
            world.uow, zone, enterprise_input(CBEC_USCC[name], name.replace("_", " ").title(), (kind,)))
        user = registry.create_user(world.uow, SYSTEM, name, PASSWORD, kind, name,
                                    enterprise_uscc=CBEC_USCC[name])
        world.actors[name] = Actor(user_id=user["id"], username=name, role=Role(kind),
                                   enterprise_id=user["enterprise_id"])
    return world


def send_all(uow, world, parcel: Parcel, order: tuple[str, ...] = ("order", "payment", "waybill"),
             sampling: model.Sampling = NO_SAMPLING):
    """Send the parcel's documents in the given order; the last answer."""
    from tradewindow.ecommerce import service

    senders = {"order": "platform", "payment": "payment", "waybill": "logistics"}
    received = None
    for kind in order:
        received = service.submit(uow, world[senders[kind]], model.Kind(kind), getattr(parcel, kind), sampling)
    return received


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(autouse=True)
def _no_random_inspection(monkeypatch):
    """Decisions in these tests come from the rules alone unless a test samples on purpose."""
    from tradewindow.ecommerce import service

    monkeypatch.setattr(service, "DEFAULT_SAMPLING", NO_SAMPLING)
