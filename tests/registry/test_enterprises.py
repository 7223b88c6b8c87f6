"""Registering, reading, editing enterprises: through the service and the API."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import USCC, enterprise_input
from tradewindow.platform.errors import Conflict, Forbidden, ValidationFailed
from tradewindow.platform.tables import audit_log, outbox_events
from tradewindow.registry import service as registry
from tradewindow.registry.tables import enterprises


def _count(uow, table) -> int:
    with uow.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_zone_registers_an_enterprise_with_audit_and_event(world):
    uow = world.uow
    before_audit, before_events = _count(uow, audit_log), _count(uow, outbox_events)
    created = registry.register_enterprise(uow, world["zone"], enterprise_input(USCC["spare"], "Jiulong Aluminium"))
    assert created["uscc"] == USCC["spare"]
    assert created["status"] == "active"
    assert _count(uow, audit_log) == before_audit + 1
    assert _count(uow, outbox_events) == before_events + 1


def test_wrong_credit_code_is_refused_with_every_problem_and_nothing_stored(world):
    uow = world.uow
    before = _count(uow, enterprises)
    bad = enterprise_input("91500115GG37HDHFEB", sector="atlantis", kinds=("pirate",))
    with pytest.raises(ValidationFailed) as refused:
        registry.register_enterprise(uow, world["zone"], bad)
    codes = {(p.path, p.code) for p in refused.value.problems}
    assert codes == {("uscc", "invalid_uscc"), ("sector", "unknown_sector"), ("kinds[0]", "invalid_choice")}
    assert _count(uow, enterprises) == before


def test_duplicate_credit_code_is_a_conflict(world):
    with pytest.raises(Conflict) as refused:
        registry.register_enterprise(world.uow, world["zone"], enterprise_input(USCC["trader"]))
    assert refused.value.problems[0].code == "duplicate"


def test_a_trader_may_not_register_enterprises(world):
    with pytest.raises(Forbidden):
        registry.register_enterprise(world.uow, world["trader"], enterprise_input(USCC["spare"]))


def test_a_trader_sees_only_its_own_enterprise(world):
    listed = registry.list_enterprises(world.uow, world["trader"])
    assert [e["uscc"] for e in listed["items"]] == [USCC["trader"]]


def test_a_broker_sees_the_traders_that_authorised_it(world, authorised_broker):
    listed = registry.list_enterprises(world.uow, world["broker"])
    assert {e["uscc"] for e in listed["items"]} == {USCC["trader"], USCC["broker"]}


def test_an_edit_based_on_a_stale_version_is_refused(world):
    enterprise = world.enterprises["other_trader"]
    registry.update_enterprise(world.uow, world["zone"], enterprise["id"], {"address": "New address"}, 1)
    with pytest.raises(Conflict) as refused:
        registry.update_enterprise(world.uow, world["zone"], enterprise["id"], {"address": "Other"}, 1)
    assert refused.value.problems[0].code == "stale_version"


# --- API -----------------------------------------------------------------------------------------

def test_api_registers_an_enterprise(client, as_user):
    response = client.post("/api/v1/enterprises", headers=as_user("zone"), json={
        "uscc": USCC["spare"], "name_zh": "九龙铝业", "name_en": "Jiulong Aluminium", "sector": "jiulongpo",
        "kinds": ["trader"]})
    assert response.status_code == 201, response.text
    assert client.get(f"/api/v1/enterprises/{USCC['spare']}", headers=as_user("zone")).json()["name_en"] == \
        "Jiulong Aluminium"


def test_api_wrong_credit_code_is_422_with_path_and_code(client, as_user):
    response = client.post("/api/v1/enterprises", headers=as_user("zone"), json={
        "uscc": "91500115GG37HDHFEB", "name_en": "X", "sector": "xiyong", "kinds": ["trader"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "uscc"
    assert response.json()["errors"][0]["code"] == "invalid_uscc"


def test_api_duplicate_enterprise_is_409_and_changes_nothing(client, as_user, world):
    before = _count(world.uow, enterprises)
    response = client.post("/api/v1/enterprises", headers=as_user("zone"), json={
        "uscc": USCC["trader"], "name_en": "Again", "sector": "xiyong", "kinds": ["trader"]})
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "duplicate"
    assert _count(world.uow, enterprises) == before


def test_api_malformed_json_is_422_malformed_json(client, as_user):
    response = client.post("/api/v1/enterprises", headers={**as_user("zone"), "content-type": "application/json"},
                           content=b'{"uscc": ')
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "malformed_json"


def test_api_unknown_field_is_refused(client, as_user):
    response = client.post("/api/v1/enterprises", headers=as_user("zone"), json={
        "uscc": USCC["spare"], "name_en": "X", "sector": "xiyong", "kinds": ["trader"], "colour": "red"})
    assert response.status_code == 422
    assert {"path": "colour", "code": "unknown_field"} in [
        {"path": e["path"], "code": e["code"]} for e in response.json()["errors"]]


def test_api_unauthenticated_call_is_401_and_changes_nothing(client, world):
    before = _count(world.uow, enterprises)
    response = client.post("/api/v1/enterprises", json={
        "uscc": USCC["spare"], "name_en": "X", "sector": "xiyong", "kinds": ["trader"]})
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"
    assert _count(world.uow, enterprises) == before


def test_api_trader_may_not_register_enterprises(client, as_user):
    response = client.post("/api/v1/enterprises", headers=as_user("trader"), json={
        "uscc": USCC["spare"], "name_en": "X", "sector": "xiyong", "kinds": ["trader"]})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "role_not_allowed"


def test_api_unknown_enterprise_is_404(client, as_user):
    response = client.get("/api/v1/enterprises/NOPE", headers=as_user("zone"))
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_api_null_in_an_edit_is_422_not_a_crash(client, as_user, world):
    enterprise = world.enterprises["trader"]
    response = client.patch(f"/api/v1/enterprises/{enterprise['id']}", headers=as_user("zone"),
                            json={"name_zh": None, "kinds": None, "address": "New"})
    assert response.status_code == 422
    assert {(e["path"], e["code"]) for e in response.json()["errors"]} == {
        ("name_zh", "wrong_type"), ("kinds", "wrong_type")}
    assert registry.get_enterprise(world.uow, world["zone"], enterprise["id"])["address"] == "Chongqing"
