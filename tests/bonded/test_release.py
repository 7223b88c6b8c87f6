"""The model case: imported cars arrive by rail as bonded entry, wait without tax, and a dealer
releases one car to the domestic market, taxed at the rates of its own acceptance day; the car
moves only when that declaration is released. Re-export leaves without tax."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from tests.bonded.conftest import ENTRY_DAY, RELEASE_DAY, VINS, admit, clear, relay
from tradewindow.bonded import service as bonded
from tradewindow.customs import service as customs
from tradewindow.platform.db import UnitOfWork, clock_at
from tradewindow.platform.errors import Conflict, NotFound
from tradewindow.platform.money import fen


def where(bw, book, vin) -> str:
    return next(u for u in bonded.list_units(bw.uow, bw["trader"], book["id"]) if u["serial"] == vin)["location"]


def test_admitted_cars_wait_in_bonded_storage_without_tax(bw, book):
    entry = admit(bw, book)
    assert entry["total_due"] == "0.00"
    detail = bonded.get_book(bw.uow, bw["trader"], book["id"])
    assert detail["items"][0]["held"] == "3"
    assert detail["lots"][0]["declaration_number"] == entry["number"]
    assert [u["location"] for u in bonded.list_units(bw.uow, bw["trader"], book["id"])] == ["bonded_storage"] * 3


def test_admission_is_idempotent_per_declaration(bw, book):
    entry = admit(bw, book)
    again = bonded.admit_entry(bw.uow, bw["trader"], book["id"], {"declaration": entry["number"]})
    assert not again.created
    assert bonded.get_book(bw.uow, bw["trader"], book["id"])["items"][0]["held"] == "3"


def test_only_a_released_bonded_entry_of_the_books_enterprise_is_admitted(bw, book):
    imported = customs.lodge_declaration(bw.uow, bw["trader"], _import_filing()).declaration
    with pytest.raises(Conflict) as refused:
        bonded.admit_entry(bw.uow, bw["trader"], book["id"], {"declaration": imported["id"]})
    assert refused.value.code == "not_a_bonded_entry"
    other_book = bonded.open_book(bw.uow, bw["other_trader"], {"kind": "bonded_logistics", "name": "Other"})
    entry = admit(bw, book)
    with pytest.raises(NotFound):  # the other trader does not even see the declaration
        bonded.admit_entry(bw.uow, bw["other_trader"], other_book["id"], {"declaration": entry["id"]})


def _import_filing():
    from tests.customs.conftest import CAR, filing

    return filing("IMP-1", CAR)


def test_a_vin_with_a_wrong_check_digit_is_refused(bw, book):
    with clock_at(ENTRY_DAY):
        from tests.bonded.conftest import lodge_entry

        entry = lodge_entry(bw, n=1)
        with pytest.raises(Exception) as refused:
            bonded.admit_entry(bw.uow, bw["trader"], book["id"],
                               {"declaration": entry["id"], "serials": {"1": ["1M8GDM9A1KP042788"]}})
    assert refused.value.problems[0].code == "invalid_vin_check_digit"
    assert bonded.get_book(bw.uow, bw["trader"], book["id"])["lots"] == []


def test_release_taxes_at_the_rate_in_force_on_the_acceptance_day_and_moves_only_when_released(bw, book):
    admit(bw, book)
    with clock_at(RELEASE_DAY):
        quoted = bonded.quote_release(bw.uow, bw["trader"], book["id"], {"lines": [{"serial": VINS[0]}]})
        requested = bonded.release_to_domestic(bw.uow, bw["trader"], book["id"],
                                               {"client_reference": "DEALER-1", "lines": [{"serial": VINS[0]}]})
        declaration = requested.declaration
        assert declaration["type"] == "bonded_release"
        assert declaration["client_reference"] == "BR-DEALER-1"
        assessment = declaration["assessment"]
        # June's USD rate (7.1811), not March's (7.1853) when the car entered the zone.
        value = fen(Decimal("50000.00") * Decimal("7.1811"))
        assert assessment["items"][0]["customs_value_cny"] == str(value)
        assert assessment["items"][0]["duty"] == str(fen(value * Decimal("0.15")))
        assert quoted["assessment"]["totals"] == assessment["totals"]
        assert Decimal(declaration["total_due"]) > 0
        relay(bw)
        assert where(bw, book, VINS[0]) == "bonded_storage"            # reserved, not moved
        assert requested.request["status"] == "pending"
        released = clear(bw, declaration)
        assert released["status"] == "released"
        assert where(bw, book, VINS[0]) == "bonded_storage"            # the event is not relayed yet
        relay(bw)
    assert where(bw, book, VINS[0]) == "domestic_market"
    assert bonded.get_request(bw.uow, bw["trader"], requested.request["id"])["status"] == "done"
    moves = bonded.history(bw.uow, bw["trader"], book["id"], serial=VINS[0])
    assert [(m["kind"], m["to"]) for m in moves] == [("entry", "bonded_storage"), ("release", "domestic_market")]
    assert moves[1]["declaration_id"] == declaration["id"]
    assert bonded.get_book(bw.uow, bw["trader"], book["id"])["items"][0]["held"] == "2"


def test_a_repeated_release_returns_the_first_request(bw, book):
    admit(bw, book)
    body = {"client_reference": "DEALER-2", "lines": [{"serial": VINS[1]}]}
    first = bonded.release_to_domestic(bw.uow, bw["trader"], book["id"], body)
    again = bonded.release_to_domestic(bw.uow, bw["trader"], book["id"], body)
    assert not again.created and again.request["id"] == first.request["id"]


def test_a_cancelled_release_frees_the_car(bw, book):
    admit(bw, book)
    requested = bonded.release_to_domestic(bw.uow, bw["trader"], book["id"],
                                           {"client_reference": "DEALER-3", "lines": [{"serial": VINS[1]}]})
    customs.cancel_declaration(bw.uow, bw["trader"], requested.declaration["id"], "Dealer changed its mind")
    relay(bw)
    assert bonded.get_request(bw.uow, bw["trader"], requested.request["id"])["status"] == "cancelled"
    again = bonded.release_to_domestic(bw.uow, bw["trader"], book["id"],
                                       {"client_reference": "DEALER-4", "lines": [{"serial": VINS[1]}]})
    assert again.created


def test_reexport_leaves_with_no_tax(bw, book):
    admit(bw, book)
    requested = bonded.reexport(bw.uow, bw["trader"], book["id"], {
        "client_reference": "RX-1", "lines": [{"serial": VINS[2]}], "country_of_destination": "KZ",
        "transport_mode": "rail"})
    assert requested.declaration["type"] == "reexport"
    assert requested.declaration["total_due"] == "0.00"
    assert requested.declaration["status"] == "released"
    relay(bw)
    assert where(bw, book, VINS[2]) == "reexported"


def test_release_of_a_car_already_promised_is_refused_and_changes_nothing(bw, book):
    admit(bw, book)
    bonded.release_to_domestic(bw.uow, bw["trader"], book["id"],
                               {"client_reference": "DEALER-5", "lines": [{"serial": VINS[0]}]})
    before = bonded.history(bw.uow, bw["trader"], book["id"])
    with pytest.raises(Conflict) as refused:
        bonded.release_to_domestic(bw.uow, bw["trader"], book["id"],
                                   {"client_reference": "DEALER-6", "lines": [{"serial": VINS[0]}]})
    assert refused.value.code == "insufficient_stock"
    assert "reserved" in refused.value.problems[0].message
    assert bonded.history(bw.uow, bw["trader"], book["id"]) == before
    assert customs.list_declarations(bw.uow, bw["trader"], type="bonded_release")["total"] == 1


def test_another_trader_cannot_move_the_books_goods(bw, book):
    admit(bw, book)
    with pytest.raises(NotFound):
        bonded.release_to_domestic(bw.uow, bw["other_trader"], book["id"],
                                   {"client_reference": "X-1", "lines": [{"serial": VINS[0]}]})
    assert bonded.list_books(bw.uow, bw["other_trader"]) == []
    assert [b["id"] for b in bonded.list_books(bw.uow, bw["customs_officer"])] == [book["id"]]


@pytest.mark.postgres
def test_concurrent_releases_of_the_last_unit_let_exactly_one_through(bw, book, engine):
    admit(bw, book, n=1, vins=[VINS[0]])
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def release(reference: str) -> None:
        barrier.wait()
        try:
            bonded.release_to_domestic(UnitOfWork(engine), bw["trader"], book["id"],
                                       {"client_reference": reference, "lines": [{"serial": VINS[0]}]})
            outcomes.append("ok")
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=release, args=(f"RACE-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["insufficient_stock", "ok"]
    assert customs.list_declarations(bw.uow, bw["trader"], type="bonded_release")["total"] == 1
