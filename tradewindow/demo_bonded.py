"""The demo's bonded vehicle warehouse: the car importer's account book in the Xiyong
Comprehensive Bonded Zone, cars admitted from bonded-entry declarations that arrived by the
China–Europe Railway Express over the last months, one car released to the domestic market (its
declaration lodged, taxed, paid and released, the car moved when the release event is relayed)
and one re-exported to Kazakhstan: some two hundred cars, all through the real services with the
clock set back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from tradewindow.bonded import service as bonded
from tradewindow.customs import service as customs
from tradewindow.platform.auth import Actor
from tradewindow.platform.db import UnitOfWork, clock_at
from tradewindow.platform.outbox import relay_pending

BOOK_NAME = "Xiyong bonded vehicle warehouse"
# (days ago, origin, currency, goods, unit price, VIN prefix, count): European makers carry no VIN
# check digit, so these are valid as written.
ARRIVALS = [
    (120, "DE", "EUR", "Passenger car, 2.0 l petrol engine", "87032361", Decimal("38500.00"), "WDD2220821A", 80),
    (75, "DE", "EUR", "Passenger car, 3.0 l petrol engine", "87032411", Decimal("72900.00"), "WBA7U2C06NC", 60),
    (40, "GB", "GBP", "Passenger car, 2.0 l petrol engine", "87032361", Decimal("41200.00"), "SAJBA4BN8HA", 70),
]


def load_demo_bonded(engine: Engine, actors: dict[str, Actor], now: datetime | None = None) -> dict:
    """Open the book, admit the cars, release one and re-export another. Returns the book."""
    now = now or datetime.now(UTC)
    trader = actors["trader"]
    with clock_at(now - timedelta(days=130)):
        book = bonded.open_book(UnitOfWork(engine), trader, {"kind": "bonded_exhibition", "name": BOOK_NAME})
    vins: list[str] = []
    for number, (days, origin, currency, description, code, price, prefix, count) in enumerate(ARRIVALS, 1):
        at = now - timedelta(days=days)
        serials = [f"{prefix}{number}{i:05d}" for i in range(1, count + 1)]
        body = {"client_reference": f"DEMO-BE-{number:02d}", "type": "bonded_entry", "customs_office": "8012",
                "transport_mode": "rail", "transport_document": f"CIM-XY-{number:04d}", "incoterm": "CIF",
                "currency": currency, "country_of_dispatch": origin, "invoice_total": str(price * count),
                "items": [{"tariff_code": code, "description": description, "origin": origin, "quantity": str(count),
                           "unit": "NAR", "net_mass_kg": str(1650 * count), "gross_mass_kg": str(1720 * count),
                           "value": str(price * count), "licence_numbers": ["DEMO-AIL-0001"]}]}
        with clock_at(at):
            declaration = customs.lodge_declaration(UnitOfWork(engine), trader, body).declaration
        declaration = _clear(engine, actors, declaration, at + timedelta(hours=6))
        with clock_at(at + timedelta(hours=8)):
            bonded.admit_entry(UnitOfWork(engine), trader, book["id"], {
                "declaration": declaration["id"], "serials": {"1": serials}, "location": "bonded_exhibition"})
        vins += serials
    at = now - timedelta(days=20)
    with clock_at(at):
        reexport = bonded.reexport(UnitOfWork(engine), trader, book["id"], {
            "client_reference": "DEMO-RX-01", "lines": [{"serial": vins[1]}], "country_of_destination": "KZ",
            "transport_mode": "rail"}).declaration
    assert reexport is not None
    # Its lane is drawn like any other's (now and then red or yellow): the officers clear it.
    _clear(engine, actors, reexport, at + timedelta(hours=5))
    at = now - timedelta(days=10)
    with clock_at(at):
        release = bonded.release_to_domestic(UnitOfWork(engine), trader, book["id"], {
            "client_reference": "DEMO-BR-01", "lines": [{"serial": vins[0]}]}).declaration
    assert release is not None
    _clear(engine, actors, release, at + timedelta(hours=5))
    # The moves follow the release events, as the worker's relay would deliver them.
    with clock_at(at + timedelta(hours=6)):
        while relay_pending(UnitOfWork(engine)):
            pass
    return book


def _clear(engine: Engine, actors: dict[str, Actor], declaration: dict, at: datetime) -> dict:
    """Play the officers' and the trader's part until the declaration is released."""
    uow, trader = UnitOfWork(engine), actors["trader"]
    with clock_at(at):
        if declaration["status"] in ("inspection", "document_check"):
            customs.record_control_result(uow, actors["customs"], declaration["id"], True,
                                          "Vehicles and documents match the declaration")
        for task in declaration["agency_tasks"]:
            if task["status"] == "pending":
                officer = actors["quarantine" if task["agency_kind"] == "quarantine" else "licensing"]
                customs.decide_task(uow, officer, task["id"], "approve")
        current = customs.get_declaration(uow, trader, declaration["id"])
        if current["status"] == "taxes_due":
            current = customs.record_payment(uow, trader, declaration["id"], "payment", f"BANK-{current['number']}",
                                             Decimal(current["total_due"]))
        return customs.get_declaration(uow, trader, declaration["id"])


PLANT_NAME = "Liangjiang laptop plant"


def load_demo_processing(engine: Engine, actors: dict[str, Actor], now: datetime | None = None) -> dict:
    """The electronics maker's processing-trade book: aluminium and processors admitted bonded,
    the laptop's bill of materials (2 kg of aluminium at a 20 % process loss, one processor), and
    a processing order that made 400 laptops. Returns the book."""
    now = now or datetime.now(UTC)
    maker = actors["electronics"]
    at = now - timedelta(days=60)
    with clock_at(at):
        book = bonded.open_book(UnitOfWork(engine), maker, {"kind": "processing_trade", "name": PLANT_NAME})
        body = {"client_reference": "DEMO-PT-01", "type": "bonded_entry", "customs_office": "8012",
                "transport_mode": "rail", "transport_document": "CIM-PT-0001", "incoterm": "CIF",
                "currency": "USD", "country_of_dispatch": "KR", "invoice_total": "70000.00",
                "items": [{"tariff_code": "76011000", "description": "Unwrought aluminium ingots", "origin": "AU",
                           "quantity": "20000", "unit": "KGM", "net_mass_kg": "20000", "gross_mass_kg": "20100",
                           "value": "50000.00"},
                          {"tariff_code": "85423100", "description": "Processors", "origin": "KR",
                           "quantity": "1000", "unit": "NAR", "net_mass_kg": "2", "gross_mass_kg": "3",
                           "value": "20000.00"}]}
        declaration = customs.lodge_declaration(UnitOfWork(engine), maker, body).declaration
    declaration = _clear(engine, {**actors, "trader": maker}, declaration, at + timedelta(hours=4))
    with clock_at(at + timedelta(hours=6)):
        bonded.admit_entry(UnitOfWork(engine), maker, book["id"], {"declaration": declaration["id"]})
        items = {i["tariff_code"]: i["id"] for i in bonded.get_book(UnitOfWork(engine), maker, book["id"])["items"]}
        laptop = {"tariff_code": "84713000", "description": "Laptop computer", "unit": "NAR"}
        valid_from = (at - timedelta(days=30)).date().isoformat()
        bonded.record_bom(UnitOfWork(engine), maker, book["id"], {
            "finished": laptop, "material_item_id": items["76011000"], "net_consumption": "2", "loss_rate": "0.2",
            "valid_from": valid_from})
        finished = bonded.record_bom(UnitOfWork(engine), maker, book["id"], {
            "finished": laptop, "material_item_id": items["85423100"], "net_consumption": "1",
            "valid_from": valid_from})["finished_item_id"]
    with clock_at(now - timedelta(days=30)):
        bonded.process(UnitOfWork(engine), maker, book["id"], {
            "client_reference": "DEMO-PO-01", "finished_item_id": finished, "quantity": "400"})
    return book
