"""Transfer to another zone: the sender asks (the goods are reserved), the destination approves
first, and then the goods leave one book (transfer_out) and enter the other (transfer_in) in one
transaction, traced to the lots they came from."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.bonded.conftest import VINS, admit
from tests.customs.conftest import ALUMINIUM, filing
from tradewindow.bonded import service as bonded
from tradewindow.customs import service as customs
from tradewindow.platform.db import clock_at
from tradewindow.platform.errors import Conflict, NotFound


@pytest.fixture
def other_book(bw) -> dict:
    return bonded.open_book(bw.uow, bw["other_trader"], {"kind": "bonded_logistics", "name": "Lianglu warehouse"})


def units(bw, actor, book) -> dict[str, str]:
    return {u["serial"]: u["location"] for u in bonded.list_units(bw.uow, bw[actor], book["id"])}


def test_a_transfer_moves_nothing_until_the_destination_approves_then_both_books_move(bw, book, other_book):
    admit(bw, book)
    asked = bonded.request_transfer(bw.uow, bw["trader"], book["id"], {
        "client_reference": "TR-1", "destination_book_id": other_book["id"], "lines": [{"serial": VINS[0]}],
        "reason": "Sold to a dealer in the Lianglu zone"})
    assert asked.created and asked.request["status"] == "pending"
    assert units(bw, "trader", book)[VINS[0]] == "bonded_storage"
    assert bonded.list_units(bw.uow, bw["trader"], book["id"], q=VINS[0])[0]["reserved"]
    incoming = bonded.incoming_transfers(bw.uow, bw["other_trader"], other_book["id"])
    assert [(t["id"], t["lines"][0]["serial"], t["source_book_name"]) for t in incoming] == \
        [(asked.request["id"], VINS[0], "Xiyong vehicle warehouse")]
    with pytest.raises(NotFound):                      # the sender cannot approve for the destination
        bonded.approve_transfer(bw.uow, bw["trader"], asked.request["id"])

    with clock_at(datetime(2025, 4, 2, 2, tzinfo=UTC)):
        transfer_in = bonded.approve_transfer(bw.uow, bw["other_trader"], asked.request["id"])
    assert transfer_in["kind"] == "transfer_in" and transfer_in["status"] == "done"
    assert units(bw, "trader", book)[VINS[0]] == "other_zone"
    assert units(bw, "other_trader", other_book) == {VINS[0]: "bonded_storage"}
    assert bonded.get_request(bw.uow, bw["trader"], asked.request["id"])["status"] == "done"
    out_moves = bonded.history(bw.uow, bw["trader"], book["id"], serial=VINS[0])
    in_moves = bonded.history(bw.uow, bw["other_trader"], other_book["id"], serial=VINS[0])
    assert [(m["kind"], m["to"]) for m in out_moves] == [("entry", "bonded_storage"), ("transfer_out", "other_zone")]
    assert [(m["kind"], m["from"], m["to"]) for m in in_moves] == [("transfer_in", "other_zone", "bonded_storage")]
    assert out_moves[1]["request_id"] == asked.request["id"] and in_moves[0]["request_id"] == transfer_in["id"]
    lot = bonded.get_book(bw.uow, bw["other_trader"], other_book["id"])["lots"][0]
    assert lot["declaration_number"] == out_moves[0]["declaration_number"]      # traced to the entry
    assert lot["source_lot_id"] == out_moves[0]["lot_id"]
    assert incoming and not bonded.incoming_transfers(bw.uow, bw["other_trader"], other_book["id"])
    with pytest.raises(Conflict) as again:
        bonded.approve_transfer(bw.uow, bw["other_trader"], asked.request["id"])
    assert again.value.code == "transfer_not_pending"
    # Both books reconcile: a removal on one, a receipt on the other.
    period = (date(2025, 3, 1), date(2025, 4, 30))
    sent = bonded.reconciliation(bw.uow, bw["zone"], book["id"], *period)["items"][0]
    received = bonded.reconciliation(bw.uow, bw["zone"], other_book["id"], *period)["items"][0]
    assert (sent["receipts"], sent["removals"]["transfer_out"], sent["closing"]) == ("3", "1", "2")
    assert (received["opening"], received["receipts"], received["closing"]) == ("0", "1", "1")


def test_fungible_goods_transfer_first_in_first_out_and_keep_their_value_share(bw, book, other_book):
    with clock_at(datetime(2025, 3, 5, 2, tzinfo=UTC)):
        entry = customs.lodge_declaration(bw.uow, bw["trader"], filing("AL-T", ALUMINIUM, type="bonded_entry"))
        bonded.admit_entry(bw.uow, bw["trader"], book["id"], {"declaration": entry.declaration["id"]})
    item_id = bonded.get_book(bw.uow, bw["trader"], book["id"])["items"][0]["id"]
    asked = bonded.request_transfer(bw.uow, bw["trader"], book["id"], {
        "client_reference": "TR-2", "destination_book_id": other_book["id"],
        "lines": [{"item_id": item_id, "quantity": "5000"}]})
    with pytest.raises(Conflict) as refused:           # the reserved 5000 cannot be promised twice
        bonded.destroy(bw.uow, bw["customs_officer"], book["id"], {
            "client_reference": "D-T", "reason": "x", "lines": [{"item_id": item_id, "quantity": "15001"}]})
    assert refused.value.code == "insufficient_stock"
    bonded.approve_transfer(bw.uow, bw["other_trader"], asked.request["id"], {"location": "bonded_exhibition"})
    assert bonded.get_book(bw.uow, bw["trader"], book["id"])["items"][0]["held"] == "15000"
    received = bonded.get_book(bw.uow, bw["other_trader"], other_book["id"])
    assert received["items"][0]["balances"] == {"bonded_exhibition": "5000"}
    assert received["lots"][0]["value"] == "12500.00"  # a quarter of 50,000 USD


def test_a_transfer_may_be_refused_by_the_destination_or_withdrawn_by_the_sender(bw, book, other_book):
    admit(bw, book)
    body = {"destination_book_id": other_book["id"], "lines": [{"serial": VINS[1]}]}
    first = bonded.request_transfer(bw.uow, bw["trader"], book["id"], {**body, "client_reference": "TR-3"})
    assert not bonded.request_transfer(bw.uow, bw["trader"], book["id"], {**body, "client_reference": "TR-3"}).created
    bonded.cancel_transfer(bw.uow, bw["other_trader"], first.request["id"], "Not ours")
    second = bonded.request_transfer(bw.uow, bw["trader"], book["id"], {**body, "client_reference": "TR-4"})
    bonded.cancel_transfer(bw.uow, bw["trader"], second.request["id"])
    assert units(bw, "trader", book)[VINS[1]] == "bonded_storage"
    assert not bonded.list_units(bw.uow, bw["trader"], book["id"], q=VINS[1])[0]["reserved"]
    with pytest.raises(Conflict):
        bonded.approve_transfer(bw.uow, bw["other_trader"], second.request["id"])


def test_a_transfer_to_an_unknown_or_the_same_book_is_refused(bw, book):
    admit(bw, book)
    for destination, code in (("01JUNKNOWNBOOK000000000000", "unknown_book"), (book["id"], "same_book")):
        with pytest.raises(Exception) as refused:
            bonded.request_transfer(bw.uow, bw["trader"], book["id"], {
                "client_reference": "TR-5", "destination_book_id": destination, "lines": [{"serial": VINS[2]}]})
        assert refused.value.problems[0].code == code


def test_transfers_through_the_api_and_pages(bw, book, other_book, client, as_user):
    admit(bw, book)
    trader, other = as_user("trader"), as_user("other_trader")
    asked = client.post(f"/api/v1/bonded/books/{book['id']}/transfers", headers=trader, json={
        "client_reference": "API-T", "destination_book_id": other_book["id"], "lines": [{"serial": VINS[0]}]})
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["request"]["id"]
    assert client.post(f"/api/v1/bonded/transfers/{request_id}/approve", headers=trader).status_code == 404
    page = client.get(f"/bonded/{other_book['id']}", headers=other)
    assert 'id="incoming-transfers"' in page.text and VINS[0] in page.text
    approved = client.post(f"/bonded/transfers/{request_id}/approve", headers=other, follow_redirects=False,
                           data={"book_id": other_book["id"]})
    assert approved.status_code == 303, approved.text
    units = client.get(f"/api/v1/bonded/books/{other_book['id']}/units", headers=other).json()
    assert [(u["serial"], u["location"]) for u in units] == [(VINS[0], "bonded_storage")]
    sent = client.post(f"/bonded/{book['id']}/transfer", headers=trader, follow_redirects=False, data={
        "serials": VINS[1], "destination_book_id": other_book["id"], "client_reference": "PAGE-T"})
    assert sent.status_code == 303, sent.text
    pending = client.get(f"/api/v1/bonded/books/{other_book['id']}/transfers/incoming", headers=other).json()
    assert client.post(f"/api/v1/bonded/transfers/{pending[0]['id']}/cancel", headers=other).status_code == 200
