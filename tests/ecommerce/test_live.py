"""The live dashboard's figures and the parcel search: computed from the stored decisions, in
buckets of the last minutes, scoped to what the reader may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.ecommerce.conftest import Parcel, resident_id, send_all
from tradewindow.ecommerce import service
from tradewindow.platform.db import clock_at

NOON = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)


def test_decisions_per_second_over_the_last_minutes_by_decision_and_reason(cbec_world, uow):
    with clock_at(NOON - timedelta(minutes=10)):            # outside the window: in the totals only
        send_all(uow, cbec_world, Parcel())
    with clock_at(NOON - timedelta(seconds=95)):
        for _ in range(3):
            send_all(uow, cbec_world, Parcel())
    with clock_at(NOON - timedelta(seconds=5)):
        spoilt = Parcel()
        spoilt.payment["payer_id_number"] = resident_id(99)
        send_all(uow, cbec_world, spoilt)
        send_all(uow, cbec_world, Parcel())
    live = service.live_figures(uow, cbec_world["customs_officer"], now=NOON)
    assert live["decisions"] == {"release": 4, "inspect": 0, "reject": 1}
    assert live["totals"] == {"release": 5, "inspect": 0, "reject": 1}
    assert live["parcels_per_second"] == round(2 / 60, 1)
    assert live["reasons"] == {"payer_mismatch": 1}
    assert len(live["labels"]) == len(live["series"]["release"]) == 30
    assert live["series"]["release"][-1] == 0.1 and live["series"]["reject"][-1] == 0.1    # 1 in 10 s
    assert live["series"]["release"][-10] == 0.3                                            # 95 s ago: 3
    # A party sees its own parcels only.
    assert service.live_figures(uow, cbec_world["other_platform"], now=NOON)["totals"]["release"] == 0


def test_the_live_figures_over_the_api_and_the_fragment(cbec_world, client, as_user):
    send_all(cbec_world.uow, cbec_world, Parcel())
    answer = client.get("/api/v1/cbec/live", headers=as_user("zone"))
    assert answer.status_code == 200 and answer.json()["totals"]["release"] == 1
    assert client.get("/api/v1/cbec/live", headers=as_user("trader")).status_code == 403


def test_parcels_are_searched_by_the_start_of_their_order_or_waybill_number(cbec_world, client, as_user):
    for order_no in ("TM-A-1", "TM-A-2", "JD_B_1"):
        send_all(cbec_world.uow, cbec_world, Parcel(order_no=order_no))
    found = client.get("/api/v1/cbec/parcels", params={"q": "tm-a"}, headers=as_user("customs_officer")).json()
    assert sorted(p["order_no"] for p in found["items"]) == ["TM-A-1", "TM-A-2"]
    by_waybill = client.get("/api/v1/cbec/parcels", params={"q": "WB-JD_B"}, headers=as_user("platform")).json()
    assert [p["order_no"] for p in by_waybill["items"]] == ["JD_B_1"]
    assert client.get("/api/v1/cbec/parcels", params={"q": "JD%"}, headers=as_user("platform")).json()["total"] == 1
    assert client.get("/api/v1/cbec/parcels", params={"q": "JD_"}, headers=as_user("platform")).json()["total"] == 1
    assert client.get("/api/v1/cbec/parcels", params={"q": "J_B"}, headers=as_user("platform")).json()["total"] == 0
