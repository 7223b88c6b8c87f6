"""Goods under a railway bill of lading are released only to the holder of record."""

from __future__ import annotations

from tests.conftest import USCC
from tests.customs.conftest import ICS, filing
from tests.titles.conftest import bill
from tradewindow.customs import service as customs
from tradewindow.platform.outbox import relay_pending
from tradewindow.titles import service as titles

BOL = "CQDUI2026000777"


def test_a_declaration_waits_until_the_trader_holds_the_bill_then_is_released(customs_world, titles_world):
    uow = customs_world.uow
    titles.issue_bill(uow, titles_world["carrier"], bill(BOL))
    titles.endorse(uow, titles_world["trader"], BOL, USCC["other_trader"])     # the bill is sold on
    body = filing("LRN-BOL", ICS, type="bonded_entry", transport_document=BOL)
    declaration = customs.lodge_declaration(uow, customs_world["trader"], body).declaration
    assert declaration["status"] == "title_hold"
    titles.endorse(uow, titles_world["other_trader"], BOL, USCC["trader"])     # and comes back
    relay_pending(uow)
    assert customs.get_declaration(uow, customs_world["trader"], declaration["id"])["status"] == "released"


def test_a_pledged_bill_holds_the_goods_for_everyone(customs_world, titles_world):
    uow = customs_world.uow
    titles.issue_bill(uow, titles_world["carrier"], bill(BOL))
    titles.pledge(uow, titles_world["trader"], BOL, USCC["bank"])
    body = filing("LRN-BOL2", ICS, type="bonded_entry", transport_document=BOL)
    assert customs.lodge_declaration(uow, customs_world["trader"], body).declaration["status"] == "title_hold"


def test_a_transport_document_that_is_no_bill_of_lading_holds_nothing(customs_world):
    body = filing("LRN-BOL3", ICS, type="bonded_entry", transport_document="CIM-NOT-A-BOL")
    assert customs.lodge_declaration(customs_world.uow, customs_world["trader"], body).declaration["status"] == \
        "released"


def test_the_declaration_page_says_why_the_goods_wait(customs_world, titles_world, client):
    from tests.conftest import PASSWORD

    uow = customs_world.uow
    titles.issue_bill(uow, titles_world["carrier"], bill(BOL))
    titles.endorse(uow, titles_world["trader"], BOL, USCC["other_trader"])
    body = filing("LRN-BOL4", ICS, type="bonded_entry", transport_document=BOL)
    declaration = customs.lodge_declaration(uow, customs_world["trader"], body).declaration
    client.post("/login", data={"username": "trader", "password": PASSWORD})
    page = client.get(f"/declarations/{declaration['id']}")
    assert "only to its holder of record" in page.text
    assert ">Paid<" not in page.text            # nothing is due on a bonded entry
