"""A few hundred declarations of the last months in every state, lodged and moved on through the
real services with the clock set back, so the pages, queues and clearance-time statistics of the
demo show something real. Deterministic: the same seed gives the same history."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from tradewindow.customs import service as customs
from tradewindow.platform.auth import Actor
from tradewindow.platform.db import UnitOfWork, clock_at
from tradewindow.platform.errors import DomainError


@dataclass(frozen=True)
class Goods:
    tariff_code: str
    description: str
    unit: str
    unit_price: tuple[int, int]        # in the invoice currency
    quantity: tuple[int, int]
    kg_per_unit: Decimal
    origins: tuple[str, ...]
    licence: bool = False


CARS = [
    Goods("87032361", "Passenger car, 2.0 l petrol engine", "NAR", (28000, 60000), (1, 6), Decimal(1600),
          ("DE", "JP", "GB", "US"), licence=True),
    Goods("87032411", "Passenger car, 3.0 l petrol engine", "NAR", (55000, 120000), (1, 3), Decimal(1900),
          ("DE", "GB", "US"), licence=True),
    Goods("87038000", "Battery-electric passenger car", "NAR", (30000, 70000), (1, 8), Decimal(2000),
          ("DE", "US", "KR"), licence=True),
]
ELECTRONICS = [
    Goods("84713000", "Laptop computers", "NAR", (400, 1500), (50, 400), Decimal("2.1"), ("CN", "VN", "MY")),
    Goods("85171300", "Smartphones", "NAR", (200, 900), (100, 800), Decimal("0.35"), ("VN", "KR", "IN")),
    Goods("85423100", "Processors and controllers", "NAR", (5, 80), (1000, 20000), Decimal("0.002"),
          ("KR", "MY", "SG", "JP")),
]
WINE = [Goods("22042100", "Red wine in 750 ml bottles", "LTR", (6, 30), (900, 9000), Decimal("1.3"),
              ("FR", "AU", "CL", "IT", "ES")),
        Goods("04022100", "Whole milk powder", "KGM", (4, 9), (1000, 20000), Decimal("1.02"), ("NZ", "AU", "NL"))]
ALUMINIUM = [Goods("76011000", "Unwrought aluminium ingots", "KGM", (2, 3), (20000, 200000), Decimal(1),
                   ("AU", "IN", "RU"))]

RATE_CURRENCY = {"DE": "EUR", "GB": "GBP", "JP": "JPY", "US": "USD", "KR": "USD", "FR": "EUR", "IT": "EUR",
                 "ES": "EUR", "NL": "EUR"}


def load_demo_history(engine: Engine, actors: dict[str, Actor], count: int = 240, seed: int = 2026,
                      now: datetime | None = None) -> int:
    """Lodge `count` declarations spread over the last 150 days and move each on as officers and
    traders would; the newest stay open at various stages. Returns the number lodged."""
    rnd = random.Random(seed)
    now = now or datetime.now(UTC)
    plans = [("trader", CARS, "8012", "rail"), ("broker", CARS, "8012", "rail"),
             ("electronics", ELECTRONICS, "8012", "air"), ("wine", WINE, "8013", "sea"),
             ("aluminium", ALUMINIUM, "8015", "river")]
    lodged = 0
    for index in range(count):
        username, catalogue, office, mode = rnd.choice(plans)
        # Most of the history is settled; one in eight is from the last three days and still open.
        days_ago = rnd.uniform(0, 3) if rnd.random() < 0.125 else rnd.uniform(3, 150)
        lodged_at = now - timedelta(days=days_ago)
        body = _filing(rnd, index, catalogue, office, mode, export=username == "electronics" and rnd.random() < 0.3)
        if username == "broker":
            body["trader_uscc"] = actors["trader_uscc"]
        try:
            with clock_at(lodged_at):
                declaration = customs.lodge_declaration(UnitOfWork(engine), actors[username], body).declaration
        except DomainError:
            continue          # the demo's own data should not fail; skip rather than stop the demo
        lodged += 1
        _move_on(engine, rnd, actors, declaration, lodged_at, now, actors[username])
    return lodged


def _filing(rnd: random.Random, index: int, catalogue: list[Goods], office: str, mode: str, export: bool) -> dict:
    items = []
    for goods in rnd.sample(catalogue, k=rnd.randint(1, min(3, len(catalogue)))):
        quantity = rnd.randint(*goods.quantity)
        net = (goods.kg_per_unit * quantity).quantize(Decimal("0.001"))
        origin = rnd.choice(goods.origins)
        item = {"tariff_code": goods.tariff_code, "description": goods.description, "origin": origin,
                "quantity": str(quantity), "unit": goods.unit, "net_mass_kg": str(net),
                "gross_mass_kg": str((net * Decimal("1.08")).quantize(Decimal("0.001"))),
                "value": str(Decimal(rnd.randint(*goods.unit_price) * quantity))}
        if goods.licence and not export:
            item["licence_numbers"] = ["DEMO-AIL-0001"]
        items.append(item)
    currency = "USD" if export else RATE_CURRENCY.get(items[0]["origin"], "USD")
    body = {"client_reference": f"DEMO-{index:05d}", "type": "export" if export else "import",
            "customs_office": office, "transport_mode": mode, "transport_document": f"DOC-{index:05d}",
            "incoterm": "CIF", "currency": currency,
            "invoice_total": str(sum(Decimal(i["value"]) for i in items)), "items": items}
    if export:
        body["country_of_destination"] = rnd.choice(["DE", "PL", "NL", "KZ"])
        for item in items:
            item["origin"] = "CN"
    else:
        body["country_of_dispatch"] = items[0]["origin"] if items[0]["origin"] != "CN" else "HK"
    return body


def _move_on(engine: Engine, rnd: random.Random, actors: dict[str, Actor], declaration: dict,
             start: datetime, now: datetime, declarant: Actor) -> None:
    """Play the officers' and the trader's part, each at a plausible later time; stop at `now`."""
    moment = start
    age_hours = (now - start).total_seconds() / 3600

    def later(low: float, high: float) -> datetime | None:
        nonlocal moment
        moment = moment + timedelta(hours=rnd.uniform(low, high))
        return moment if moment < now else None

    def act(at: datetime | None, action) -> bool:
        if at is None:
            return False
        try:
            with clock_at(at):
                action(UnitOfWork(engine))
        except DomainError:
            return False      # e.g. a state this little script did not foresee: leave it there
        return True

    if declaration["status"] == "released":
        if declaration["type"] == "export":
            act(later(6, 96), lambda uow: customs.record_exit(uow, actors["customs"], declaration["id"]))
        return
    if rnd.random() < 0.04 and age_hours > 2:
        act(later(0.5, 3), lambda uow: customs.cancel_declaration(uow, declarant, declaration["id"],
                                                                   "Lodged twice by mistake"))
        return
    if declaration["lane"] in ("red", "yellow"):
        conform = rnd.random() > 0.05
        if not act(later(2, 30), lambda uow: customs.record_control_result(
                uow, actors["customs"], declaration["id"], conform,
                "Goods and documents match the declaration" if conform else "Engine numbers do not match")):
            return
        if not conform:
            return
    for task in declaration["agency_tasks"]:
        officer = actors["quarantine" if task["agency_kind"] == "quarantine" else "licensing"]
        if rnd.random() < 0.06:
            if not act(later(1, 8), lambda uow, t=task, o=officer: customs.decide_task(
                    uow, o, t["id"], "request_documents", "Please send the certificate of origin")):
                return
            if not act(later(2, 20), lambda uow: customs.add_document(uow, declarant, declaration["id"], {
                    "type": "certificate", "filename": "certificate.pdf", "content_type": "application/pdf",
                    "content_base64": "JVBERi0xLjQKJSBkZW1vIGNlcnRpZmljYXRlCg=="})):
                return
        if not act(later(1, 16), lambda uow, t=task, o=officer: customs.decide_task(uow, o, t["id"], "approve")):
            return
    due = Decimal(declaration["total_due"])
    if due > 0 and not act(later(0.5, 36), lambda uow: customs.record_payment(
            uow, declarant, declaration["id"], "payment", f"BANK-{declaration['number']}", due)):
        return
    if declaration["type"] == "export":
        act(later(6, 96), lambda uow: customs.record_exit(uow, actors["customs"], declaration["id"]))
