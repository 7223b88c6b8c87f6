"""Bonded-import mode (issue 6): an order naming a bonded warehouse takes its goods from that
warehouse's cross-border e-commerce account book when its parcel is released or inspected; short
stock refuses the parcel (`insufficient_bonded_stock`) and counts nothing toward the buyer's year;
a cancelled parcel puts its goods back; two workers never draw the same stock."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest

from tests.customs.conftest import customs_world, filing  # noqa: F401 - fixture re-exported
from tests.ecommerce.conftest import BUYER, Parcel, add_cbec_parties, resident_id, send_all
from tradewindow.bonded import service as bonded
from tradewindow.customs import service as customs
from tradewindow.ecommerce import model, service
from tradewindow.platform.db import UnitOfWork

MILK = {"tariff_code": "04022100", "description": "Whole milk powder 900 g", "origin": "NZ", "quantity": "5",
        "unit": "KGM", "net_mass_kg": "4.5", "gross_mass_kg": "5", "value": "150.00"}


def admit_milk(world, book: dict, cans: int, reference: str) -> None:
    """A released bonded-entry declaration of `cans` kilograms of milk powder (one 1 kg can
    each; the book counts in the declared unit), admitted into the book."""
    declaration = customs.lodge_declaration(world.uow, world["trader"], filing(
        reference, {**MILK, "quantity": str(cans), "value": f"{30 * cans}.00"}, type="bonded_entry"))
    for task in declaration.declaration["agency_tasks"]:      # the quarantine check, passed
        officer = {"quarantine": "quarantine_officer", "licensing": "licensing_officer"}[task["agency_kind"]]
        customs.decide_task(world.uow, world[officer], task["id"], "approve")
    assert customs.get_declaration(world.uow, world["trader"], declaration.declaration["id"])["status"] == "released"
    bonded.admit_entry(world.uow, world["trader"], book["id"], {"declaration": declaration.declaration["number"]})


@pytest.fixture
def bonded_world(customs_world):  # noqa: F811
    """The customs world (a bonded-entry declaration can be released) with the e-commerce parties."""
    return add_cbec_parties(customs_world)


@pytest.fixture
def warehouse(bonded_world):
    """The trader's cross-border e-commerce book ("Xiyong CBEC warehouse") holding 5 cans, then 3."""
    book = bonded.open_book(bonded_world.uow, bonded_world["trader"],
                            {"kind": "cbec_bonded_import", "name": "Xiyong CBEC warehouse"})
    admit_milk(bonded_world, book, 5, "ENTRY-MILK-1")
    admit_milk(bonded_world, book, 3, "ENTRY-MILK-2")
    return book


def bonded_parcel(book: dict, cans: int = 1, **kwargs) -> Parcel:
    parcel = Parcel(value=f"{300 * cans}.00", quantity=str(cans), **kwargs)
    parcel.order["bonded_warehouse"] = book["id"]
    parcel.order["items"][0]["unit"] = "kg"     # the order's quantity is in the book's unit
    return parcel


def held(world, book: dict) -> Decimal:
    found = bonded.get_book(world.uow, world["customs_officer"], book["id"])
    return sum((Decimal(lot["balances"].get("bonded_storage", "0")) for lot in found["lots"]), Decimal(0))


def test_a_released_bonded_import_parcel_takes_its_goods_first_in_first_out(bonded_world, warehouse, uow):
    received = send_all(uow, bonded_world, bonded_parcel(warehouse, cans=6))
    assert received.parcel["decision"] == "release"
    book = bonded.get_book(uow, bonded_world["customs_officer"], warehouse["id"])
    first, second = sorted(book["lots"], key=lambda lot: lot["declaration_number"])
    assert first["balances"].get("bonded_storage", "0") == "0"        # the older lot emptied first
    assert second["balances"]["bonded_storage"] == "2"
    moves = bonded.history(uow, bonded_world["customs_officer"], warehouse["id"])
    assert sorted(m["quantity"] for m in moves if m["kind"] == "cbec_release") == ["1", "5"]


def test_the_warehouse_may_be_named_by_its_book_name(bonded_world, warehouse, uow):
    parcel = Parcel(value="300.00")
    parcel.order["bonded_warehouse"] = "Xiyong CBEC warehouse"
    assert send_all(uow, bonded_world, parcel).parcel["decision"] == "release"
    assert held(bonded_world, warehouse) == 7


def test_short_stock_refuses_the_parcel_changes_nothing_and_counts_nothing(bonded_world, warehouse, uow):
    received = send_all(uow, bonded_world, bonded_parcel(warehouse, cans=9))
    assert received.parcel["decision"] == "reject"
    assert received.parcel["reasons"] == ["insufficient_bonded_stock"]
    assert received.parcel["counted"] == "0.00"
    assert held(bonded_world, warehouse) == 8
    assert service.buyer_year(uow, bonded_world["customs_officer"], BUYER, 2026)["total"] == "0.00"
    # The whole stock, exactly: released.
    assert send_all(uow, bonded_world, bonded_parcel(warehouse, cans=8)).parcel["decision"] == "release"
    assert held(bonded_world, warehouse) == 0


def test_an_unknown_warehouse_refuses_the_parcel(bonded_world, warehouse, uow):
    parcel = Parcel()
    parcel.order["bonded_warehouse"] = "NO-SUCH-WAREHOUSE"
    received = send_all(uow, bonded_world, parcel)
    assert (received.parcel["decision"], received.parcel["reasons"]) == ("reject", ["unknown_bonded_warehouse"])


def test_a_parcel_refused_for_another_reason_draws_nothing(bonded_world, warehouse, uow):
    parcel = bonded_parcel(warehouse, cans=2)
    parcel.waybill["consignee_name"] = "李四"
    assert send_all(uow, bonded_world, parcel).parcel["reasons"] == ["consignee_mismatch"]
    assert held(bonded_world, warehouse) == 8


def test_an_inspected_parcel_draws_its_goods_too(bonded_world, warehouse, uow):
    received = send_all(uow, bonded_world, bonded_parcel(warehouse, cans=2),
                        sampling=model.Sampling(rate=Decimal(1)))
    assert received.parcel["decision"] == "inspect"
    assert held(bonded_world, warehouse) == 6


def test_a_cancelled_parcel_puts_its_goods_back_once(bonded_world, warehouse, uow):
    parcel = bonded_parcel(warehouse, cans=6)
    send_all(uow, bonded_world, parcel)
    assert held(bonded_world, warehouse) == 2
    service.cancel_parcel(uow, bonded_world["platform"], parcel.order_no, "returned by the buyer")
    service.cancel_parcel(uow, bonded_world["platform"], parcel.order_no, "returned by the buyer")
    assert held(bonded_world, warehouse) == 8
    book = bonded.get_book(uow, bonded_world["customs_officer"], warehouse["id"])
    first, second = sorted(book["lots"], key=lambda lot: lot["declaration_number"])
    assert (first["balances"]["bonded_storage"], second["balances"]["bonded_storage"]) == ("5", "3")
    report = bonded.reconciliation(uow, bonded_world["customs_officer"], warehouse["id"], date(2000, 1, 1),
                                   date(2100, 1, 1))
    assert all(row["balances"] for row in report["items"])
    assert report["items"][0]["removals"]["cbec_release"] == "6"


def test_the_batch_path_draws_in_the_rule_order(bonded_world, warehouse, uow):
    """A batch decides per buyer in ordered_at order: the earlier order gets the last cans."""
    early = bonded_parcel(warehouse, cans=5, buyer=resident_id(7), ordered_at="2026-11-11T00:01:00+08:00")
    late = bonded_parcel(warehouse, cans=5, buyer=resident_id(7), ordered_at="2026-11-11T00:02:00+08:00")
    lines = [(n, line) for n, line in enumerate(late.lines() + early.lines(), start=1)]
    summary = service.import_batch(uow, bonded_world["admin"], lines)
    assert summary.decisions == {"release": 1, "inspect": 0, "reject": 1}
    officer = bonded_world["customs_officer"]
    assert service.get_parcel(uow, officer, early.order_no)["result"]["decision"] == "release"
    assert service.get_parcel(uow, officer, late.order_no)["result"]["reasons"] == ["insufficient_bonded_stock"]


@pytest.mark.postgres
def test_concurrent_workers_never_draw_the_same_stock_twice(bonded_world, warehouse, uow, db):
    """Eight parcels of one can for eight buyers, their waybills sent by four threads at once: the
    book holds 8 cans, then 4 more parcels find it empty; exactly 8 are released."""
    parcels = [bonded_parcel(warehouse, cans=1, buyer=resident_id(20 + n)) for n in range(12)]
    for parcel in parcels:
        service.submit(uow, bonded_world["platform"], model.Kind.ORDER, parcel.order)
        service.submit(uow, bonded_world["payment"], model.Kind.PAYMENT, parcel.payment)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(mine: list[Parcel]) -> None:
        own = UnitOfWork(db)
        start.wait()
        try:
            for parcel in mine:
                service.submit(own, bonded_world["logistics"], model.Kind.WAYBILL, parcel.waybill)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(parcels[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    results = service.list_parcels(uow, bonded_world["customs_officer"], limit=100)["items"]
    assert sorted(r["decision"] for r in results) == ["reject"] * 4 + ["release"] * 8
    assert held(bonded_world, warehouse) == 0
