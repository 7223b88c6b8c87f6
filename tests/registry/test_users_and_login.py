"""Users and logging in: an administrator creates accounts; a password buys a bearer token;
repeated failures lock the account; an administrator unlocks and resets; every attempt is audited."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD, USCC, bearer
from tradewindow.platform.auth import SYSTEM, hash_secret
from tradewindow.platform.db import utcnow
from tradewindow.platform.errors import Conflict, Forbidden, Unauthenticated, ValidationFailed
from tradewindow.platform.settings import get_settings
from tradewindow.platform.tables import audit_log
from tradewindow.registry import service as registry
from tradewindow.registry.tables import credentials, users


def _token(client, username: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def _codes(response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


def _user_id(uow, username: str) -> str:
    with uow.read() as conn:
        return conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one()


def _audit_actions(uow, object_id: str) -> list[str]:
    with uow.read() as conn:
        return list(conn.execute(select(audit_log.c.action).where(audit_log.c.object_id == object_id)
                                 .order_by(audit_log.c.id)).scalars())


# --- creating users ------------------------------------------------------------------------------

def test_admin_creates_a_user_who_can_then_log_in(client, as_user):
    response = client.post("/api/v1/users", headers=as_user("admin"), json={
        "username": "li.wei", "password": "a long enough secret", "role": "trader",
        "display_name": "Li Wei", "enterprise_uscc": USCC["trader"]})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["role"] == "trader" and created["active"] is True
    assert "password_hash" not in created
    assert _token(client, "li.wei", "a long enough secret").status_code == 200


@pytest.mark.parametrize(("body", "path", "code"), [
    ({"username": "no spaces allowed", "role": "admin"}, "username", "invalid_username"),
    ({"username": "short.pw", "password": "short", "role": "admin"}, "password", "password_too_short"),
    ({"username": "wrong.kind", "role": "broker", "enterprise_uscc": USCC["trader"]}, "role",
     "role_not_for_enterprise"),
    ({"username": "wrong.agency", "role": "customs", "agency_code": "CQ-QUA"}, "role", "role_not_for_agency"),
    ({"username": "nowhere", "role": "trader", "enterprise_uscc": USCC["spare"]}, "enterprise_uscc",
     "unknown_enterprise"),
    ({"username": "homeless", "role": "trader"}, "enterprise_uscc", "required"),
    ({"username": "stateless", "role": "customs"}, "agency_code", "required"),
    ({"username": "who", "role": "emperor"}, "role", "invalid_choice"),
])
def test_an_invalid_user_is_refused_with_its_code_and_nothing_stored(client, as_user, world, body, path, code):
    before = len(registry.list_users(world.uow, SYSTEM))
    response = client.post("/api/v1/users", headers=as_user("admin"), json={"password": PASSWORD, **body})
    assert response.status_code == 422, response.text
    assert {"path": path, "code": code} in [{"path": e["path"], "code": e["code"]}
                                            for e in response.json()["errors"]]
    assert len(registry.list_users(world.uow, SYSTEM)) == before


def test_every_problem_of_a_new_user_is_reported_at_once(client, as_user):
    response = client.post("/api/v1/users", headers=as_user("admin"), json={
        "username": "bad name", "password": "short", "role": "trader", "enterprise_uscc": USCC["spare"]})
    assert response.status_code == 422
    assert sorted(_codes(response)) == ["invalid_username", "password_too_short", "unknown_enterprise"]


def test_a_taken_username_is_a_conflict(client, as_user):
    response = client.post("/api/v1/users", headers=as_user("admin"), json={
        "username": "trader", "password": PASSWORD, "role": "trader", "enterprise_uscc": USCC["trader"]})
    assert response.status_code == 409
    assert _codes(response) == ["duplicate"]


def test_only_an_administrator_creates_users(client, as_user, world):
    response = client.post("/api/v1/users", headers=as_user("zone"), json={
        "username": "sneaky", "password": PASSWORD, "role": "admin"})
    assert response.status_code == 403
    with pytest.raises(Forbidden) as refused:
        registry.create_user(world.uow, world["zone"], "sneaky", PASSWORD, "admin")
    assert refused.value.code == "role_not_allowed"


# --- logging in ----------------------------------------------------------------------------------

def test_a_password_buys_a_bearer_token_that_identifies_the_user(client, world):
    response = _token(client, "trader")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("tw_tok_")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == "trader"
    assert me.json()["enterprise_id"] == world.enterprises["trader"]["id"]


def test_a_wrong_password_is_401_invalid_credentials(client, world):
    response = _token(client, "trader", "not the password")
    assert response.status_code == 401
    assert _codes(response) == ["invalid_credentials"]


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(client, world):
    response = _token(client, "nobody", "whatever it is")
    assert response.status_code == 401
    assert _codes(response) == ["invalid_credentials"]


def test_repeated_failures_lock_the_account_even_against_the_right_password(client, world):
    limit = get_settings().max_failed_logins
    for _ in range(limit - 1):
        assert _codes(_token(client, "trader", "guess")) == ["invalid_credentials"]
    assert _token(client, "trader").status_code == 200        # success before the limit resets the count
    for _ in range(limit):
        _token(client, "trader", "guess")
    locked = _token(client, "trader")
    assert locked.status_code == 401
    assert _codes(locked) == ["account_locked"]


def test_an_administrator_unlocks_a_locked_account(client, as_user, world):
    for _ in range(get_settings().max_failed_logins):
        _token(client, "trader", "guess")
    assert _codes(_token(client, "trader")) == ["account_locked"]
    user_id = _user_id(world.uow, "trader")
    response = client.post(f"/api/v1/users/{user_id}/unlock", headers=as_user("admin"))
    assert response.status_code == 200
    assert response.json()["locked_until"] is None
    assert _token(client, "trader").status_code == 200
    assert "registry.user_unlocked" in _audit_actions(world.uow, user_id)


def test_a_password_reset_unlocks_and_ends_the_users_tokens(client, as_user, world):
    old = bearer(client, "trader")
    for _ in range(get_settings().max_failed_logins):
        _token(client, "trader", "guess")
    user_id = _user_id(world.uow, "trader")
    response = client.post(f"/api/v1/users/{user_id}/password", headers=as_user("admin"),
                           json={"password": "a brand new password"})
    assert response.status_code == 200, response.text
    refused = client.get("/api/v1/me", headers=old)
    assert refused.status_code == 401
    assert _codes(refused) == ["invalid_token"]
    assert _codes(_token(client, "trader")) == ["invalid_credentials"]
    assert _token(client, "trader", "a brand new password").status_code == 200
    assert "registry.password_reset" in _audit_actions(world.uow, user_id)


def test_a_password_reset_obeys_the_password_rules(client, as_user, world):
    user_id = _user_id(world.uow, "trader")
    response = client.post(f"/api/v1/users/{user_id}/password", headers=as_user("admin"),
                           json={"password": "short"})
    assert response.status_code == 422
    assert _codes(response) == ["password_too_short"]
    assert _token(client, "trader").status_code == 200


def test_every_login_success_and_failure_is_audited(client, world):
    user_id = _user_id(world.uow, "trader")
    _token(client, "trader", "guess")
    _token(client, "trader")
    _token(client, "nobody", "guess")
    assert _audit_actions(world.uow, user_id) == ["registry.user_created", "registry.login_failed",
                                                  "registry.login"]
    with world.uow.read() as conn:
        unknown = conn.execute(select(audit_log).where(audit_log.c.object_id == "nobody")).mappings().one()
    assert unknown["action"] == "registry.login_failed"
    assert unknown["after"] == {"reason": "unknown_user"}


def test_a_demo_account_is_refused_outside_demo_mode(client, world):
    registry.create_user(world.uow, SYSTEM, "demo.trader", "demo", "trader",
                         enterprise_uscc=USCC["trader"], is_demo=True)
    response = _token(client, "demo.trader", "demo")
    assert response.status_code == 401
    assert _codes(response) == ["demo_account_disabled"]


def test_a_demo_account_logs_in_in_demo_mode_only_while_it_lasts(client, world, demo_mode, monkeypatch):
    registry.create_user(world.uow, SYSTEM, "demo.trader", "demo", "trader",
                         enterprise_uscc=USCC["trader"], is_demo=True)
    token = bearer(client, "demo.trader", "demo")
    assert client.get("/api/v1/me", headers=token).status_code == 200
    # The server restarted without demo mode: the demo account's token stops working too.
    monkeypatch.setenv("TRADEWINDOW_DEMO_MODE", "false")
    get_settings.cache_clear()
    assert client.get("/api/v1/me", headers=token).status_code == 401


def test_the_demo_password_is_refused_for_real_accounts(world):
    with pytest.raises(ValidationFailed) as refused:
        registry.create_user(world.uow, SYSTEM, "real.user", "demo", "admin")
    assert refused.value.code == "password_too_short"


def test_a_deactivated_user_cannot_log_in_and_its_tokens_stop_working(client, as_user, world):
    token = bearer(client, "trader")
    user_id = _user_id(world.uow, "trader")
    response = client.post(f"/api/v1/users/{user_id}/active", headers=as_user("admin"), json={"active": False})
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert client.get("/api/v1/me", headers=token).status_code == 401
    assert _codes(_token(client, "trader")) == ["account_inactive"]
    client.post(f"/api/v1/users/{user_id}/active", headers=as_user("admin"), json={"active": True})
    assert _token(client, "trader").status_code == 200
    assert client.get("/api/v1/me", headers=token).status_code == 401   # old tokens stay revoked


def test_an_expired_token_is_refused(client, world, monkeypatch):
    monkeypatch.setenv("TRADEWINDOW_TOKEN_HOURS", "0")      # tokens expire the moment they are issued
    get_settings.cache_clear()
    token = bearer(client, "trader")
    response = client.get("/api/v1/me", headers=token)
    assert response.status_code == 401
    assert _codes(response) == ["invalid_token"]


def test_logging_out_revokes_the_token(client, world):
    token = bearer(client, "trader")
    assert client.post("/api/v1/auth/logout", headers=token).status_code == 204
    assert client.get("/api/v1/me", headers=token).status_code == 401


def test_a_token_revoked_by_another_server_process_stops_working_within_a_second(client, world, monkeypatch):
    # Each server process keeps a credential it found good for CREDENTIAL_SECONDS (1 s); a
    # revocation written by another process (here: straight into the database) is seen after that.
    monkeypatch.setattr(registry, "CREDENTIAL_SECONDS", 0.2)
    token = bearer(client, "trader")
    assert client.get("/api/v1/me", headers=token).status_code == 200
    with world.uow.transaction() as conn:
        conn.execute(update(credentials).where(credentials.c.secret_hash == hash_secret(
            token["Authorization"].removeprefix("Bearer "))).values(revoked_at=utcnow()))
    time.sleep(0.25)
    assert client.get("/api/v1/me", headers=token).status_code == 401


def test_a_made_up_token_is_401(client, world):
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer tw_tok_madeup"})
    assert response.status_code == 401
    assert _codes(response) == ["invalid_token"]


def test_the_service_refuses_a_wrong_password_and_a_duplicate_user(world):
    with pytest.raises(Unauthenticated):
        registry.log_in(world.uow, "trader", "guess")
    with pytest.raises(Conflict):
        registry.create_user(world.uow, SYSTEM, "admin", PASSWORD, "admin")
