"""The demo zone: loaded through the services into a fresh database, one account per role with the
password "demo" that works in demo mode only, loaded once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select
from stdnum import iso6346

from tests.conftest import _empty
from tests.support.reference import reference_data_dir, require_reference
from tradewindow.customs import service as customs
from tradewindow.demo import CAR_IMPORTER, ENTERPRISES, _actor_of, demo_accounts, is_loaded, load_demo
from tradewindow.logistics import service as logistics
from tradewindow.platform.auth import SYSTEM, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import Conflict, Unauthenticated
from tradewindow.platform.jobs import registered_periodic
from tradewindow.platform.settings import get_settings
from tradewindow.platform.tables import audit_log
from tradewindow.registry import model
from tradewindow.registry import service as registry
from tradewindow.titles import service as titles

EPCIS_SCHEMA = "epcis/EPCIS-JSON-Schema.json"


@pytest.fixture(scope="module")
def demo_engine(engine: Engine) -> Iterator[Engine]:
    """The demo, loaded once per database for this module (it is big), emptied afterwards. As
    `tradewindow demo` does, it captures its EPCIS events when the reference schema is at hand."""
    assert not is_loaded(engine)
    schema = reference_data_dir() / EPCIS_SCHEMA
    with pytest.MonkeyPatch.context() as patch:
        if schema.is_file():
            patch.setenv("TRADEWINDOW_EPCIS_SCHEMA", str(schema))
        else:
            patch.delenv("TRADEWINDOW_EPCIS_SCHEMA", raising=False)
        get_settings.cache_clear()
        try:
            load_demo(engine)
        finally:
            get_settings.cache_clear()
    get_settings.cache_clear()
    yield engine
    _empty(engine)


@pytest.fixture
def demo(demo_engine: Engine) -> UnitOfWork:
    return UnitOfWork(demo_engine)


def test_the_demo_is_loaded_once(demo_engine, demo):
    db = demo_engine
    assert is_loaded(db)
    with demo.read() as conn:
        audit_before = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    # Loading again is refused as a whole (the agencies exist) and changes nothing.
    with pytest.raises(Conflict):
        load_demo(db)
    with demo.read() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar_one() == audit_before


def test_the_demo_has_a_dozen_enterprises_across_the_zones_areas(demo):
    listed = registry.list_enterprises(demo, SYSTEM, limit=500)
    assert listed["total"] == len(ENTERPRISES) >= 12
    assert {e["sector"] for e in listed["items"]} <= set(model.ZONE_SECTORS)
    assert len({e["sector"] for e in listed["items"]}) >= 8
    kinds = {k for e in listed["items"] for k in e["kinds"]}
    assert {"trader", "broker", "platform", "carrier", "logistics", "bank", "payment"} <= kinds


def test_the_demo_has_one_account_per_role(demo):
    accounts = demo_accounts()
    assert {a.role for a in accounts} == {r.value for r in Role}
    users = {u["username"]: u for u in registry.list_users(demo, SYSTEM)}
    assert all(users[a.username]["is_demo"] for a in accounts)


def test_every_demo_account_logs_in_with_demo_in_demo_mode(demo, demo_mode):
    for account in demo_accounts():
        actor, _token = registry.log_in(demo, account.username, "demo")
        assert actor.role.value == account.role


def test_demo_accounts_are_refused_outside_demo_mode(demo):
    for account in demo_accounts():
        with pytest.raises(Unauthenticated) as refused:
            registry.log_in(demo, account.username, "demo")
        assert refused.value.code == "demo_account_disabled", account.username


def test_the_demo_trader_has_authorised_the_demo_broker(demo):
    users = {u["username"]: u for u in registry.list_users(demo, SYSTEM)}
    broker_id, trader_id = users["broker"]["enterprise_id"], users["trader"]["enterprise_id"]
    assert registry.broker_may_act_for(demo, broker_id, trader_id, registry.business_today())


def test_the_demo_licences_are_in_force_today(demo):
    held = registry.list_licences(demo, SYSTEM, status="granted")
    assert len(held) >= 5
    assert all(model.in_force(lic["valid_from"], lic["valid_to"], registry.business_today()) for lic in held)


def test_the_demo_has_bills_of_lading_in_every_state_with_valid_chains(demo):
    officer = _actor_of(demo, "customs")
    importer = registry.enterprise_by_uscc(demo, CAR_IMPORTER)["id"]
    bills = {b["bol_number"]: titles.get_bill(demo, officer, b["bol_number"])
             for b in titles.list_bills(demo, officer, limit=200)["items"]}
    histories = {n: [r["action"] for r in b["records"]] for n, b in bills.items()}
    assert ["issue"] in histories.values()                                    # active with the shipper
    assert any(h == ["issue", "endorse"] and bills[n]["holder"]["id"] == importer for n, h in histories.items())
    assert any(b["status"] == "pledged" and b["holder"]["id"] == importer for b in bills.values())
    assert any(h[-1] == "release_pledge" and bills[n]["status"] == "active" for n, h in histories.items())
    assert any(h[-1] == "surrender" and bills[n]["status"] == "surrendered" for n, h in histories.items())
    assert all(iso6346.is_valid(c) for b in bills.values() for c in b["containers"])
    assert {b["status"] for b in bills.values() if b["kind"] == "sea_bill"} == {    # sea bills too
        "active", "pledged", "surrendered", "void"}
    report = titles.verify_all(demo)
    assert report["bills"] == len(bills) and report["broken"] == [] and report["checkpoints"]["valid"]
    assert titles.list_checkpoints(demo)[0]["titles"] == len(bills)           # the heads are published
    assert all(titles.verify(demo, officer, n)["valid"] for n in bills)


def test_a_demo_declaration_waits_for_the_bill_of_lading_its_trader_does_not_hold(demo):
    officer = _actor_of(demo, "customs")
    held = customs.list_declarations(demo, officer, status="title_hold")["items"]
    assert len(held) == 1
    declaration = customs.get_declaration(demo, officer, held[0]["id"])
    assert declaration["type"] == "bonded_entry"
    holder = titles.holder_of(demo, declaration["transport_document"])
    assert holder is not None and holder.entitled_to_goods != declaration["trader_id"]


def test_the_demo_has_consignments_by_rail_sea_river_and_air(demo):
    listed = logistics.list_consignments(demo, SYSTEM, limit=100)["items"]
    assert len(listed) >= 4
    assert {leg["mode"] for c in listed for leg in c["legs"]} >= {"rail", "sea", "river", "air"}
    route = {tuple(s["location"] for s in c["route"]) for c in listed}
    assert ("CNTNR", "CNAKU", "KZDOS", "PLMAL", "DEDUI") in route
    containers = [u for c in listed for u in c["equipment"] if u["kind"] == "container"]
    assert containers and all(iso6346.is_valid(u["number"]) and u["seal"] for u in containers)
    # The trader sees its own consignments only.
    trader = _actor_of(demo, "trader")
    assert 0 < logistics.list_consignments(demo, trader)["total"] < len(listed)


def test_the_demo_journeys_raise_alerts_when_epcis_capture_is_configured(demo):
    require_reference(EPCIS_SCHEMA)
    statuses = {c["status"] for c in logistics.list_consignments(demo, SYSTEM, limit=100)["items"]}
    assert {"in_transit", "arrived"} <= statuses
    kinds = {a["kind"] for a in logistics.list_alerts(demo, SYSTEM)["items"]}
    assert {"seal_changed", "seal_broken", "late_arrival"} <= kinds


def test_the_worker_runs_the_dwell_check_on_the_demo(demo):
    seconds, task = registered_periodic()["logistics.check_dwell"]
    assert seconds <= 600
    task(demo)
    require_reference(EPCIS_SCHEMA)
    # The containers customs holds at Qinzhou have stood there for days.
    assert logistics.list_alerts(demo, SYSTEM, kind="dwell_exceeded")["total"] >= 1


def test_the_demo_car_importer_keeps_a_bonded_vehicle_book_that_balances(demo):
    from datetime import timedelta

    from tradewindow.bonded import service as bonded
    from tradewindow.demo_bonded import ARRIVALS, BOOK_NAME
    from tradewindow.platform.db import business_today

    trader = _actor_of(demo, "trader")
    [book] = [b for b in bonded.list_books(demo, trader) if b["name"] == BOOK_NAME]
    where = [u["location"] for u in bonded.list_units(demo, trader, book["id"])]
    cars = sum(arrival[-1] for arrival in ARRIVALS)
    assert len(where) == cars
    assert (where.count("domestic_market"), where.count("reexported"), where.count("bonded_exhibition")) == \
        (1, 1, cars - 2)
    released = [m for m in bonded.history(demo, trader, book["id"]) if m["kind"] == "release"]
    declaration = customs.get_declaration(demo, trader, released[0]["declaration_id"])
    assert (declaration["type"], declaration["status"]) == ("bonded_release", "released")
    assert declaration["total_due"] != "0.00"
    today = business_today()
    report = bonded.reconciliation(demo, _actor_of(demo, "zone"), book["id"], today - timedelta(days=200), today)
    assert report["items"] and all(row["balances"] for row in report["items"])
    assert sum(int(row["closing"]) for row in report["items"]) == cars - 2


def test_the_demo_electronics_maker_has_a_processing_book_that_made_laptops(demo):
    from tradewindow.bonded import service as bonded
    from tradewindow.demo_bonded import PLANT_NAME

    maker = _actor_of(demo, "electronics")
    [book] = [b for b in bonded.list_books(demo, maker) if b["name"] == PLANT_NAME]
    held = {i["tariff_code"]: i["held"] for i in bonded.get_book(demo, maker, book["id"])["items"]}
    assert held == {"76011000": "19000", "85423100": "600", "84713000": "400"}


def test_the_demo_platform_keeps_a_bonded_e_commerce_warehouse_its_parcels_draw_on(demo):
    from tradewindow.bonded import service as bonded
    from tradewindow.demo_cbec import BOOK_NAME
    from tradewindow.ecommerce import service as ecommerce

    officer = _actor_of(demo, "customs")
    book = next(b for b in bonded.list_books(demo, officer) if b["name"] == BOOK_NAME)
    assert book["kind"] == "cbec_bonded_import"
    held = {lot["tariff_code"]: lot["balances"]["bonded_storage"]
            for lot in bonded.get_book(demo, officer, book["id"])["lots"]}
    assert held == {"04022100": "395", "33049900": "0.2"}        # 6 kg drawn, 1 kg returned; 0.3 kg drawn
    parcels = [p for p in ecommerce.list_parcels(demo, officer, q="YUOU-BW", limit=50)["items"]]
    assert sorted(p["decision"] for p in parcels) == ["reject"] + ["release"] * 5
    assert [p["reasons"] for p in parcels if p["decision"] == "reject"] == [["insufficient_bonded_stock"]]
    assert [p["status"] for p in parcels].count("cancelled") == 1
