"""Processing trade: bills of materials (unit consumption = net consumption / (1 − loss rate)),
processing orders that consume materials first in, first out and make finished goods, and the
material used beyond the allowance flagged as taxable with the duty and taxes it carries."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.customs.conftest import ALUMINIUM, ICS, filing
from tradewindow.bonded import service as bonded
from tradewindow.customs import service as customs
from tradewindow.platform.db import clock_at
from tradewindow.platform.errors import Conflict

DAY = datetime(2025, 5, 20, 2, tzinfo=UTC)
LAPTOP = {"tariff_code": "84713000", "description": "Laptop computer", "unit": "NAR"}


@pytest.fixture
def factory(bw) -> dict:
    """A processing book holding 20,000 kg of aluminium and 1,000 processors, and the laptop's
    bill of materials: 2 kg of aluminium at a 20 % process loss (2.5 kg each) and one processor."""
    book = bonded.open_book(bw.uow, bw["trader"], {"kind": "processing_trade", "name": "Laptop plant"})
    with clock_at(datetime(2025, 3, 5, 2, tzinfo=UTC)):
        entry = customs.lodge_declaration(bw.uow, bw["trader"], filing("MAT-1", ALUMINIUM, ICS, type="bonded_entry"))
        bonded.admit_entry(bw.uow, bw["trader"], book["id"], {"declaration": entry.declaration["id"]})
    items = {i["tariff_code"]: i["id"] for i in bonded.get_book(bw.uow, bw["trader"], book["id"])["items"]}
    boms = [bonded.record_bom(bw.uow, bw["trader"], book["id"], {
                "finished": LAPTOP, "material_item_id": items["76011000"], "net_consumption": "2",
                "loss_rate": "0.2", "valid_from": "2025-01-01"}),
            bonded.record_bom(bw.uow, bw["trader"], book["id"], {
                "finished": LAPTOP, "material_item_id": items["85423100"], "net_consumption": "1",
                "valid_from": "2025-01-01", "valid_to": "2025-12-31"})]
    assert boms[0]["unit_consumption"] == "2.5"
    return {"book": book, "aluminium": items["76011000"], "chips": items["85423100"],
            "laptop": boms[0]["finished_item_id"]}


def held(bw, book) -> dict[str, str]:
    return {i["tariff_code"]: i["held"] for i in bonded.get_book(bw.uow, bw["trader"], book["id"])["items"]}


def test_an_order_consumes_the_allowance_and_makes_a_finished_lot(bw, factory):
    book = factory["book"]
    with clock_at(DAY):
        order = bonded.process(bw.uow, bw["trader"], book["id"], {
            "client_reference": "PO-1", "finished_item_id": factory["laptop"], "quantity": "100"}).order
    assert not order["taxable"]
    assert {m["tariff_code"]: (m["allowed"], m["used"], m["taxable_excess"]) for m in order["materials"]} == \
        {"76011000": ("250", "250", "0"), "85423100": ("100", "100", "0")}
    assert held(bw, book) == {"76011000": "19750", "85423100": "900", "84713000": "100"}
    lot = next(lot for lot in bonded.get_book(bw.uow, bw["trader"], book["id"])["lots"]
               if lot["id"] == order["finished_lot_id"])
    # 250/20000 of 50,000 USD + 100/1000 of 20,000 USD
    assert (lot["value"], lot["currency"], lot["declaration_number"]) == ("2625.00", "USD", "PO-PO-1")
    moves = [m for m in bonded.history(bw.uow, bw["trader"], book["id"]) if m["request_id"] == order["id"]]
    assert sorted((m["kind"], m["from"], m["to"]) for m in moves) == [
        ("consumption", "bonded_storage", "production"), ("consumption", "bonded_storage", "production"),
        ("production", "production", "bonded_storage")]
    again = bonded.process(bw.uow, bw["trader"], book["id"], {
        "client_reference": "PO-1", "finished_item_id": factory["laptop"], "quantity": "100"})
    assert not again.created and again.order["id"] == order["id"]
    report = bonded.reconciliation(bw.uow, bw["zone"], book["id"], date(2025, 5, 1), date(2025, 5, 31))
    rows = {r["tariff_code"]: r for r in report["items"]}
    assert rows["76011000"]["removals"]["consumption"] == "250"
    assert (rows["84713000"]["receipts"], rows["84713000"]["closing"]) == ("100", "100")
    assert all(r["balances"] for r in report["items"])


def test_material_used_beyond_the_unit_consumption_is_flagged_taxable(bw, factory):
    with clock_at(DAY):
        order = bonded.process(bw.uow, bw["trader"], factory["book"]["id"], {
            "client_reference": "PO-2", "finished_item_id": factory["laptop"], "quantity": "100",
            "materials": [{"item_id": factory["aluminium"], "quantity": "260"}]}).order
    assert order["taxable"]
    aluminium = next(m for m in order["materials"] if m["item_id"] == factory["aluminium"])
    assert (aluminium["allowed"], aluminium["used"], aluminium["taxable_excess"]) == ("250", "260", "10")
    assert aluminium["excess_value"] == "25.00 USD"
    assert aluminium["excess_taxes"]["duty"] == "8.96"          # 25 USD × 7.1681 = 179.20 CNY, 5 % MFN
    assert held(bw, factory["book"])["76011000"] == "19740"


def test_an_order_beyond_the_materials_held_is_refused_and_changes_nothing(bw, factory):
    before = bonded.history(bw.uow, bw["trader"], factory["book"]["id"])
    with clock_at(DAY), pytest.raises(Conflict) as refused:
        bonded.process(bw.uow, bw["trader"], factory["book"]["id"], {
            "client_reference": "PO-3", "finished_item_id": factory["laptop"], "quantity": "1001"})
    assert refused.value.code == "insufficient_stock"
    assert bonded.history(bw.uow, bw["trader"], factory["book"]["id"]) == before
    assert bonded.list_processing_orders(bw.uow, bw["trader"], factory["book"]["id"]) == []


def test_no_bill_of_materials_in_force_no_order(bw, factory):
    with clock_at(datetime(2026, 2, 2, 2, tzinfo=UTC)):       # the processor line expired
        order = bonded.process(bw.uow, bw["trader"], factory["book"]["id"], {
            "client_reference": "PO-4", "finished_item_id": factory["laptop"], "quantity": "1"}).order
    assert [m["tariff_code"] for m in order["materials"]] == ["76011000"]
    with pytest.raises(Conflict) as refused:
        bonded.process(bw.uow, bw["trader"], factory["book"]["id"], {
            "client_reference": "PO-5", "finished_item_id": factory["aluminium"], "quantity": "1"})
    assert refused.value.code == "no_bill_of_materials"
    logistics = bonded.open_book(bw.uow, bw["trader"], {"kind": "bonded_logistics", "name": "Store"})
    with pytest.raises(Conflict) as wrong:
        bonded.record_bom(bw.uow, bw["trader"], logistics["id"], {
            "finished": LAPTOP, "material_item_id": factory["aluminium"], "net_consumption": "1"})
    assert wrong.value.code == "not_a_processing_book"


def test_processing_through_the_api_and_pages(bw, factory, client, as_user):
    trader, book_id = as_user("trader"), factory["book"]["id"]
    assert len(client.get(f"/api/v1/bonded/books/{book_id}/boms", headers=trader).json()) == 2
    with clock_at(DAY):
        made = client.post(f"/api/v1/bonded/books/{book_id}/processing-orders", headers=trader, json={
            "client_reference": "API-PO", "finished_item_id": factory["laptop"], "quantity": "10",
            "materials": [{"item_id": factory["chips"], "quantity": "11"}]})
        assert made.status_code == 201, made.text
        assert made.json()["taxable"]
        page = client.post(f"/bonded/{book_id}/process", headers=trader, follow_redirects=False, data={
            "client_reference": "PAGE-PO", "finished_item_id": factory["laptop"], "quantity": "5"})
        assert page.status_code == 303, page.text
    detail = client.get(f"/bonded/{book_id}", headers=trader)
    assert 'id="processing-orders"' in detail.text and "API-PO" in detail.text and "taxable:" in detail.text
    assert len(client.get(f"/api/v1/bonded/books/{book_id}/processing-orders", headers=trader).json()) == 2
