"""Moves without a declaration, stocktaking, reconciliation, and the registry's withdrawal check."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.bonded.conftest import VINS, admit, relay
from tests.customs.conftest import ALUMINIUM, filing
from tradewindow.bonded import service as bonded
from tradewindow.customs import service as customs
from tradewindow.platform.db import clock_at
from tradewindow.platform.errors import Conflict, Forbidden
from tradewindow.registry import service as registry


@pytest.fixture
def ingots(bw, book) -> dict:
    """20,000 kg of aluminium in two lots (10,000 kg each), admitted in March and April."""
    lots = []
    for month, reference in ((3, "AL-1"), (4, "AL-2")):
        with clock_at(datetime(2025, month, 5, 2, tzinfo=UTC)):
            half = {**ALUMINIUM, "quantity": "10000", "net_mass_kg": "10000", "gross_mass_kg": "10050",
                    "value": "25000.00"}
            declaration = customs.lodge_declaration(bw.uow, bw["trader"],
                                                    filing(reference, half, type="bonded_entry")).declaration
            lots += bonded.admit_entry(bw.uow, bw["trader"], book["id"], {"declaration": declaration["id"]}).lots
    return {"item_id": lots[0]["item_id"], "lots": lots}


def held(bw, book) -> str:
    return bonded.get_book(bw.uow, bw["trader"], book["id"])["items"][0]["held"]


def test_a_removal_of_more_than_the_book_holds_is_refused_and_changes_nothing(bw, book, ingots):
    with pytest.raises(Conflict) as refused:
        bonded.destroy(bw.uow, bw["customs_officer"], book["id"], {
            "client_reference": "D-1", "reason": "Water damage",
            "lines": [{"item_id": ingots["item_id"], "quantity": "20001"}]})
    assert refused.value.code == "insufficient_stock"
    assert "20000 available" in refused.value.problems[0].message
    assert held(bw, book) == "20000"
    assert bonded.history(bw.uow, bw["trader"], book["id"])[-1]["kind"] == "entry"


def test_fungible_goods_leave_first_in_first_out(bw, book, ingots):
    bonded.destroy(bw.uow, bw["customs_officer"], book["id"], {
        "client_reference": "D-2", "reason": "Contaminated", "lines": [{"item_id": ingots["item_id"],
                                                                        "quantity": "12000"}]})
    lots = {lot["id"]: lot for lot in bonded.get_book(bw.uow, bw["trader"], book["id"])["lots"]}
    first, second = (lots[lot["id"]] for lot in ingots["lots"])
    assert first["balances"] == {}
    assert second["balances"] == {"bonded_storage": "8000"}


def test_destruction_is_recorded_by_customs(bw, book, ingots):
    with pytest.raises(Forbidden):
        bonded.destroy(bw.uow, bw["trader"], book["id"], {
            "client_reference": "D-3", "reason": "x", "lines": [{"item_id": ingots["item_id"], "quantity": "1"}]})


def test_temporary_removal_and_return(bw, book):
    admit(bw, book)
    out = bonded.take_out_temporarily(bw.uow, bw["trader"], book["id"], {
        "client_reference": "T-1", "reason": "Repair of the windscreen", "due_day": "2099-01-31",
        "lines": [{"serial": VINS[0]}]})
    assert [u["location"] for u in bonded.list_units(bw.uow, bw["trader"], book["id"], q=VINS[0])] == \
        ["temporarily_out"]
    assert held(bw, book) == "3"                      # still answered for by the book
    assert [r["id"] for r in bonded.temporarily_out(bw.uow, bw["trader"], book["id"])] == [out.request["id"]]
    bonded.return_temporarily_out(bw.uow, bw["trader"], out.request["id"])
    assert bonded.list_units(bw.uow, bw["trader"], book["id"], q=VINS[0])[0]["location"] == "bonded_storage"
    with pytest.raises(Conflict):
        bonded.return_temporarily_out(bw.uow, bw["trader"], out.request["id"])


def test_stocktaking_reports_the_shortage_with_its_taxes_and_customs_books_it(bw, book, ingots):
    count = {"counts": [{"item_id": ingots["item_id"], "quantity": "19900"}]}
    with clock_at(datetime(2025, 5, 20, 2, tzinfo=UTC)):
        report = bonded.stocktaking(bw.uow, bw["trader"], book["id"], count)
        item = report["items"][0]
        assert (item["kind"], item["difference"]) == ("shortage", "-100")
        assert item["value"] == "250.00 USD"
        assert item["taxes"]["duty"] == "89.60"      # 250 USD × 7.1681 = 1792.03 CNY, 5 % MFN
        assert held(bw, book) == "20000"             # a report changes nothing
        with pytest.raises(Forbidden):
            bonded.stocktaking(bw.uow, bw["trader"], book["id"], count, apply=True)
        bonded.stocktaking(bw.uow, bw["customs_officer"], book["id"], count, apply=True)
    assert held(bw, book) == "19900"


def test_reconciliation_per_item_balances(bw, book, ingots):
    admit(bw, book)
    with clock_at(datetime(2025, 6, 2, 2, tzinfo=UTC)):
        bonded.reexport(bw.uow, bw["trader"], book["id"], {
            "client_reference": "RX-2", "lines": [{"serial": VINS[1]}], "country_of_destination": "KZ"})
        relay(bw)
        bonded.destroy(bw.uow, bw["customs_officer"], book["id"], {
            "client_reference": "D-4", "reason": "Damaged",
            "lines": [{"item_id": ingots["item_id"], "quantity": "500"}]})
    report = bonded.reconciliation(bw.uow, bw["zone"], book["id"], date(2025, 4, 1), date(2025, 6, 30))
    rows = {r["tariff_code"]: r for r in report["items"]}
    aluminium, cars = rows["76011000"], rows["87032361"]
    assert (aluminium["opening"], aluminium["receipts"], aluminium["removals"]["destruction"],
            aluminium["closing"]) == ("10000", "10000", "500", "19500")
    assert (cars["opening"], cars["receipts"], cars["removals"]["reexport"], cars["closing"]) == ("3", "0", "1", "2")
    assert all(r["balances"] for r in report["items"])
    csv_text = bonded.reconciliation_csv(report)
    assert csv_text.splitlines()[0].startswith("tariff_code,description,unit,opening,receipts,removed_")
    assert "76011000" in csv_text


def test_withdrawal_is_refused_while_the_enterprise_holds_bonded_stock(bw, book):
    admit(bw, book, n=1, vins=[VINS[0]])
    with pytest.raises(Conflict) as refused:
        registry.withdraw_enterprise(bw.uow, bw["zone"], bw.enterprises["trader"]["id"], "Closing down")
    assert "holds_bonded_stock" in [p.code for p in refused.value.problems]
    bonded.reexport(bw.uow, bw["trader"], book["id"], {
        "client_reference": "RX-3", "lines": [{"serial": VINS[0]}], "country_of_destination": "DE"})
    relay(bw)
    left = registry.open_obligations(bw.uow, bw.enterprises["trader"]["id"])
    assert "holds_bonded_stock" not in [p.code for p in left]
