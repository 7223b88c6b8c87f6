"""The demo zone: loaded through the services into a fresh database, one account per role with the
password "demo" that works in demo mode only, loaded once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from tests.conftest import _empty
from tradewindow.demo import ENTERPRISES, demo_accounts, is_loaded, load_demo
from tradewindow.platform.auth import SYSTEM, Role
from tradewindow.platform.db import UnitOfWork
from tradewindow.platform.errors import Conflict, Unauthenticated
from tradewindow.platform.tables import audit_log
from tradewindow.registry import model
from tradewindow.registry import service as registry


@pytest.fixture(scope="module")
def demo_engine(engine: Engine) -> Iterator[Engine]:
    """The demo, loaded once per database for this module (it is big), emptied afterwards."""
    assert not is_loaded(engine)
    load_demo(engine)
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
