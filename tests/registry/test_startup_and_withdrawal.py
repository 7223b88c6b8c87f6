"""Enterprise start-up as one guided filing, and electronic withdrawal that is refused, with every
reason, while other contexts report open obligations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD, USCC, bearer
from tradewindow.platform.audit import audit_trail
from tradewindow.platform.errors import Problem
from tradewindow.registry import service as registry
from tradewindow.registry.tables import enterprises, licences, startup_filings, users


def _count(uow, table) -> int:
    with uow.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _errors(response) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


def _startup(**overrides) -> dict:
    body = {
        "client_reference": "ZONE-2025-0001",
        "enterprise": {"uscc": USCC["spare"], "name_zh": "重庆新进口有限公司", "name_en": "New Importer Co., Ltd.",
                       "address": "Xiyong", "sector": "xiyong", "kinds": ["trader"]},
        "licences": [{"licence_type": "automatic_import_licence"}, {"licence_type": "bonded_warehouse"}],
        "first_user": {"username": "new.importer", "password": "a long enough secret", "role": "trader",
                       "display_name": "Wang Fang"},
    }
    return {**body, **overrides}


# --- start-up ------------------------------------------------------------------------------------

def test_a_startup_filing_registers_the_enterprise_applies_for_licences_and_makes_its_first_user(
        client, as_user, world):
    response = client.post("/api/v1/enterprises/startup", headers=as_user("zone"), json=_startup())
    assert response.status_code == 201, response.text
    filing = response.json()
    assert filing["enterprise"]["uscc"] == USCC["spare"] and filing["enterprise"]["status"] == "active"
    assert sorted((lic["licence_type"], lic["status"]) for lic in filing["licences"]) == [
        ("automatic_import_licence", "applied"), ("bonded_warehouse", "applied")]
    assert filing["completed_at"] is None
    first_user = bearer(client, "new.importer", "a long enough secret")
    me = client.get("/api/v1/me", headers=first_user).json()
    assert me["role"] == "trader" and me["enterprise_id"] == filing["enterprise"]["id"]


def test_a_startup_filing_without_licences_is_complete_at_once(client, as_user):
    response = client.post("/api/v1/enterprises/startup", headers=as_user("zone"),
                           json=_startup(licences=[], first_user=None))
    assert response.status_code == 201
    assert response.json()["completed_at"] is not None


def test_a_repeated_startup_filing_returns_the_first_result_and_stores_nothing_new(client, as_user, world):
    first = client.post("/api/v1/enterprises/startup", headers=as_user("zone"), json=_startup())
    counts = [_count(world.uow, t) for t in (enterprises, licences, users, startup_filings)]
    again = client.post("/api/v1/enterprises/startup", headers=as_user("zone"), json=_startup())
    assert again.status_code in (200, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["enterprise"]["id"] == first.json()["enterprise"]["id"]
    assert [_count(world.uow, t) for t in (enterprises, licences, users, startup_filings)] == counts


def test_a_startup_filing_with_problems_is_refused_with_every_one_and_nothing_stored(client, as_user, world):
    counts = [_count(world.uow, t) for t in (enterprises, licences, users, startup_filings)]
    bad = _startup()
    bad["enterprise"] = {**bad["enterprise"], "uscc": "91500115GG37HDHFEB", "sector": "atlantis"}
    bad["licences"] = [{"licence_type": "import_licence"}, {"licence_type": "fishing_licence"}]
    bad["first_user"] = {"username": "new importer", "password": "short", "role": "broker"}
    response = client.post("/api/v1/enterprises/startup", headers=as_user("zone"), json=bad)
    assert response.status_code == 422
    assert _errors(response) == {
        ("enterprise.uscc", "invalid_uscc"), ("enterprise.sector", "unknown_sector"),
        ("licences[1]", "unknown_licence_type"), ("first_user.username", "invalid_username"),
        ("first_user.role", "role_not_for_enterprise"), ("first_user.password", "password_too_short")}
    assert [_count(world.uow, t) for t in (enterprises, licences, users, startup_filings)] == counts
    # Nothing was stored, so the corrected filing may reuse the client reference.
    assert client.post("/api/v1/enterprises/startup", headers=as_user("zone"), json=_startup()).status_code == 201


def test_a_startup_filing_for_a_registered_credit_code_is_a_conflict_and_stores_nothing(client, as_user, world):
    counts = [_count(world.uow, t) for t in (enterprises, licences, users, startup_filings)]
    body = _startup()
    body["enterprise"] = {**body["enterprise"], "uscc": USCC["trader"]}
    response = client.post("/api/v1/enterprises/startup", headers=as_user("zone"), json=body)
    assert response.status_code == 409
    assert _errors(response) == {("uscc", "duplicate")}
    assert [_count(world.uow, t) for t in (enterprises, licences, users, startup_filings)] == counts


def test_a_startup_filings_first_user_with_a_taken_name_undoes_the_whole_filing(client, as_user, world):
    counts = [_count(world.uow, t) for t in (enterprises, licences, users, startup_filings)]
    body = _startup(first_user={"username": "trader", "password": PASSWORD, "role": "trader"})
    response = client.post("/api/v1/enterprises/startup", headers=as_user("zone"), json=body)
    assert response.status_code == 409
    assert [_count(world.uow, t) for t in (enterprises, licences, users, startup_filings)] == counts


def test_only_the_zone_authority_takes_startup_filings(client, as_user):
    for username in ("trader", "licensing_officer", "customs_officer"):
        response = client.post("/api/v1/enterprises/startup", headers=as_user(username), json=_startup())
        assert response.status_code == 403


# --- withdrawal ----------------------------------------------------------------------------------

@pytest.fixture
def open_obligations(world) -> Iterator[dict[str, list[Problem]]]:
    """Stands in for later contexts (bonded stock, unpaid duties): what they report per enterprise id."""
    reported: dict[str, list[Problem]] = {}
    registry.register_withdrawal_check("test_obligations", lambda uow, enterprise_id: reported.get(enterprise_id, []))
    try:
        yield reported
    finally:
        registry.unregister_withdrawal_check("test_obligations")


def test_withdrawal_is_refused_with_every_open_obligation(client, as_user, world, open_obligations):
    trader = world.enterprises["trader"]
    open_obligations[trader["id"]] = [
        Problem("bonded", "bonded_stock_held", "Lot L-1 still holds 3 vehicles in bonded storage."),
        Problem("customs", "duties_unpaid", "Declaration 800020250000001 has unpaid duties."),
    ]
    listed = client.get(f"/api/v1/enterprises/{trader['id']}/obligations", headers=as_user("zone"))
    assert [o["code"] for o in listed.json()["obligations"]] == ["bonded_stock_held", "duties_unpaid"]
    response = client.post(f"/api/v1/enterprises/{trader['id']}/withdraw", headers=as_user("zone"),
                           json={"reason": "Moving to Chengdu"})
    assert response.status_code == 409
    assert _errors(response) == {("bonded", "bonded_stock_held"), ("customs", "duties_unpaid")}
    assert client.get(f"/api/v1/enterprises/{trader['id']}", headers=as_user("zone")).json()["status"] == "active"
    assert client.get("/api/v1/me", headers=as_user("trader")).status_code == 200


def test_withdrawal_succeeds_once_the_obligations_are_settled(client, as_user, world, open_obligations):
    trader = world.enterprises["trader"]
    open_obligations[trader["id"]] = [Problem("bonded", "bonded_stock_held", "Stock remains.")]
    url = f"/api/v1/enterprises/{trader['id']}/withdraw"
    assert client.post(url, headers=as_user("zone"), json={"reason": "Moving"}).status_code == 409
    open_obligations[trader["id"]] = []
    response = client.post(url, headers=as_user("zone"), json={"reason": "Moving"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "withdrawn" and response.json()["withdrawn_at"] is not None


def test_withdrawal_deactivates_the_users_and_revokes_credentials_and_authorisations(
        client, as_user, world, authorised_broker):
    trader = world.enterprises["trader"]
    token = as_user("trader")
    key = client.post("/api/v1/api-keys", headers=token, json={"name": "ERP"}).json()
    response = client.post(f"/api/v1/enterprises/{trader['id']}/withdraw", headers=as_user("zone"),
                           json={"reason": "Ceased trading"})
    assert response.status_code == 200
    assert client.get("/api/v1/me", headers=token).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {key['secret']}"}).status_code == 401
    login = client.post("/api/v1/auth/token", json={"username": "trader", "password": PASSWORD})
    assert login.status_code == 401
    assert login.json()["errors"][0]["code"] == "account_inactive"
    assert not registry.broker_may_act_for(world.uow, world.enterprises["broker"]["id"], trader["id"],
                                           registry.business_today())
    # Other enterprises' users are untouched.
    assert client.get("/api/v1/me", headers=as_user("other_trader")).status_code == 200


def test_a_withdrawn_enterprise_cannot_be_edited_or_withdrawn_again(client, as_user, world):
    trader = world.enterprises["trader"]
    client.post(f"/api/v1/enterprises/{trader['id']}/withdraw", headers=as_user("zone"), json={"reason": "Closed"})
    edit = client.patch(f"/api/v1/enterprises/{trader['id']}", headers=as_user("zone"), json={"address": "Elsewhere"})
    assert edit.status_code == 409
    assert _errors(edit) == {("", "enterprise_withdrawn")}
    again = client.post(f"/api/v1/enterprises/{trader['id']}/withdraw", headers=as_user("zone"),
                        json={"reason": "Closed"})
    assert again.status_code == 409
    assert _errors(again) == {("", "already_withdrawn")}
    assert client.get(f"/api/v1/enterprises/{trader['id']}", headers=as_user("zone")).json()["address"] == "Chongqing"


def test_withdrawal_needs_a_reason_and_the_zone_authority(client, as_user, world):
    url = f"/api/v1/enterprises/{world.enterprises['trader']['id']}/withdraw"
    assert client.post(url, headers=as_user("zone"), json={"reason": ""}).status_code == 422
    assert client.post(url, headers=as_user("trader"), json={"reason": "Leaving"}).status_code == 403
    assert client.post(url, headers=as_user("customs_officer"), json={"reason": "Leaving"}).status_code == 403


def test_withdrawal_is_audited_with_the_reason_and_bumps_the_version(world):
    trader = world.enterprises["trader"]
    withdrawn = registry.withdraw_enterprise(world.uow, world["zone"], trader["id"], "Ceased trading")
    assert withdrawn["version"] == trader["version"] + 1
    assert registry.get_enterprise(world.uow, world["zone"], trader["id"])["version"] == withdrawn["version"]
    with world.uow.read() as conn:
        trail = audit_trail(conn, "enterprise", trader["id"])
    assert trail[-1]["action"] == "registry.enterprise_withdrawn"
    assert trail[-1]["after"]["reason"] == "Ceased trading"
