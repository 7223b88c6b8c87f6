"""The buyer's annual limit: 26,000 CNY per calendar year (Asia/Shanghai) of released and
inspected parcels; the parcel that would cross it is refused, later smaller ones may pass; a
cancelled parcel gives its amount back; concurrent workers never let one buyer over it."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from tests.ecommerce.conftest import BUYER, OTHER_BUYER, Parcel, send_all
from tradewindow.ecommerce import model, service
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import Forbidden, NotFound


def result(uow, world, parcel: Parcel) -> dict:
    send_all(uow, world, parcel)
    return service.get_parcel(uow, world["customs_officer"], parcel.order_no)["result"]


def test_the_order_that_would_cross_26000_is_refused_and_a_later_smaller_one_passes(cbec_world, uow):
    for _ in range(5):
        assert result(uow, cbec_world, Parcel(value="5000.00", quantity="2"))["decision"] == "release"
    crossing = result(uow, cbec_world, Parcel(value="1000.01", quantity="2"))
    assert crossing["decision"] == "reject" and crossing["reasons"] == ["annual_limit_exceeded"]
    assert crossing["buyer_year_total_after"] == "25000.00"
    exact = result(uow, cbec_world, Parcel(value="1000.00", quantity="2"))
    assert exact["decision"] == "release" and exact["buyer_year_total_after"] == "26000.00"
    one_fen = result(uow, cbec_world, Parcel(value="0.01", tax_withheld="0"))
    assert one_fen["reasons"] == ["annual_limit_exceeded"]
    year = service.buyer_year(uow, cbec_world["customs_officer"], BUYER, 2026)
    assert (year["total"], year["remaining"], len(year["parcels"])) == ("26000.00", "0.00", 8)


def test_the_year_is_the_calendar_year_in_shanghai(cbec_world, uow):
    for _ in range(5):
        result(uow, cbec_world, Parcel(value="5000.00", quantity="2", ordered_at="2026-12-31T12:00:00+08:00"))
    # 2026-12-31 16:30 UTC is already 2027-01-01 in Chongqing: a new year, a new limit
    new_year = result(uow, cbec_world, Parcel(value="2000.00", quantity="2", ordered_at="2026-12-31T16:30:00Z"))
    assert new_year["decision"] == "release" and new_year["year"] == 2027
    assert new_year["buyer_year_total_after"] == "2000.00"


def test_limits_are_per_buyer(cbec_world, uow):
    for _ in range(5):
        result(uow, cbec_world, Parcel(value="5000.00", quantity="2"))
    assert result(uow, cbec_world, Parcel(value="1500.00", buyer=OTHER_BUYER))["decision"] == "release"


def test_rejected_parcels_do_not_count(cbec_world, uow):
    rejected = result(uow, cbec_world, Parcel(value="4000.00", tax_withheld="1.00"))
    assert rejected["decision"] == "reject"
    assert result(uow, cbec_world, Parcel(value="100.00"))["buyer_year_total_after"] == "100.00"


def test_a_cancelled_parcel_gives_its_amount_back_to_the_buyers_year(cbec_world, uow):
    for _ in range(5):
        result(uow, cbec_world, Parcel(value="5000.00", quantity="2"))
    big = Parcel(value="1000.00", quantity="2")
    assert result(uow, cbec_world, big)["buyer_year_total_after"] == "26000.00"
    with pytest.raises(NotFound):
        service.cancel_parcel(uow, cbec_world["other_platform"], big.order_no, "Returned")
    with pytest.raises(Forbidden):
        service.cancel_parcel(uow, cbec_world["customs_officer"], big.order_no, "Returned")
    cancelled = service.cancel_parcel(uow, cbec_world["platform"], big.order_no, "Returned by the buyer")
    assert cancelled["status"] == "cancelled"
    again = service.cancel_parcel(uow, cbec_world["platform"], big.order_no, "again")
    assert again["cancel_reason"] == "Returned by the buyer"
    assert service.buyer_year(uow, cbec_world["customs_officer"], BUYER, 2026)["total"] == "25000.00"
    assert result(uow, cbec_world, Parcel(value="900.00", quantity="2"))["decision"] == "release"


def test_random_inspection_draws_a_seeded_share_and_inspected_parcels_count(cbec_world, uow):
    everything = model.Sampling(rate=Decimal(1), seed="s")
    parcel = Parcel(value="100.00")
    received = send_all(uow, cbec_world, parcel, sampling=everything)
    assert received.parcel["decision"] == "inspect" and received.parcel["reasons"] == ["random_inspection"]
    assert received.parcel["buyer_year_total_after"] == "100.00"
    sampling = model.Sampling(rate=Decimal("0.1"), seed="festival")
    drawn = sum(sampling.draws(f"ORD-{n}") for n in range(10000))
    assert 850 < drawn < 1150
    assert [sampling.draws(f"ORD-{n}") for n in range(50)] == [sampling.draws(f"ORD-{n}") for n in range(50)]


def test_concurrent_workers_completing_parcels_of_one_buyer_never_exceed_the_limit(cbec_world, uow, db):
    """Twelve parcels of 4,000 CNY for one buyer, their last documents sent by six threads at once,
    each with its own unit of work: exactly six fit under 26,000 (24,000), whatever the interleaving."""
    parcels = [Parcel(value="4000.00", quantity="2") for _ in range(12)]
    for parcel in parcels:
        service.submit(uow, cbec_world["platform"], model.Kind.ORDER, parcel.order)
        service.submit(uow, cbec_world["payment"], model.Kind.PAYMENT, parcel.payment)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def worker(mine: list[Parcel]) -> None:
        own = UnitOfWork(db)
        start.wait()
        try:
            for parcel in mine:
                service.submit(own, cbec_world["logistics"], model.Kind.WAYBILL, parcel.waybill)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(parcels[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    results = service.list_parcels(uow, cbec_world["customs_officer"], buyer=BUYER, limit=100)["items"]
    assert len(results) == 12
    released = [r for r in results if r["decision"] == "release"]
    assert len(released) == 6
    assert {r["reasons"][0] for r in results if r["decision"] == "reject"} == {"annual_limit_exceeded"}
    assert service.buyer_year(uow, cbec_world["customs_officer"], BUYER, 2026)["total"] == "24000.00"
    assert sorted(Decimal(r["buyer_year_total_after"]) for r in released) == [4000 * n for n in range(1, 7)]
