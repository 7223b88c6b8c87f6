"""API keys: long-lived bearer credentials for machines. The secret is shown once and stored only
as a hash; keys are listed, rotated and revoked, each change audited."""

from __future__ import annotations

from sqlalchemy import select

from tradewindow.platform.auth import hash_secret
from tradewindow.platform.tables import audit_log
from tradewindow.registry.tables import credentials


def _new_key(client, headers, name: str = "ERP connector") -> dict:
    response = client.post("/api/v1/api-keys", headers=headers, json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def _key_auth(key: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['secret']}"}


def _codes(response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


def test_a_new_key_shows_its_secret_once_and_works_as_a_bearer_token(client, as_user):
    key = _new_key(client, as_user("trader"))
    assert key["secret"].startswith("tw_key_")
    assert key["name"] == "ERP connector" and key["revoked_at"] is None
    me = client.get("/api/v1/me", headers=_key_auth(key))
    assert me.status_code == 200
    assert me.json()["username"] == "trader"


def test_the_database_never_holds_a_keys_secret_only_its_hash(client, as_user, world):
    key = _new_key(client, as_user("trader"))
    with world.uow.read() as conn:
        rows = [dict(r) for r in conn.execute(select(credentials)).mappings()]
    stored = [str(value) for row in rows for value in row.values()]
    assert key["secret"] not in stored
    assert hash_secret(key["secret"]) in stored


def test_listing_keys_never_shows_a_secret(client, as_user):
    key = _new_key(client, as_user("trader"))
    listed = client.get("/api/v1/api-keys", headers=as_user("trader")).json()["items"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert all("secret" not in k and "secret_hash" not in k for k in listed)
    assert listed[0]["prefix"] == key["secret"][:12]


def test_a_user_lists_only_its_own_keys(client, as_user):
    _new_key(client, as_user("trader"))
    assert client.get("/api/v1/api-keys", headers=as_user("other_trader")).json()["items"] == []


def test_rotating_a_key_retires_the_old_secret_and_issues_a_working_new_one(client, as_user):
    old = _new_key(client, as_user("trader"))
    response = client.post(f"/api/v1/api-keys/{old['id']}/rotate", headers=as_user("trader"))
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["secret"] != old["secret"] and new["name"] == old["name"]
    assert client.get("/api/v1/me", headers=_key_auth(old)).status_code == 401
    assert client.get("/api/v1/me", headers=_key_auth(new)).status_code == 200
    again = client.post(f"/api/v1/api-keys/{old['id']}/rotate", headers=as_user("trader"))
    assert again.status_code == 409
    assert _codes(again) == ["key_revoked"]


def test_a_revoked_key_stops_working(client, as_user):
    key = _new_key(client, as_user("trader"))
    response = client.delete(f"/api/v1/api-keys/{key['id']}", headers=as_user("trader"))
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    refused = client.get("/api/v1/me", headers=_key_auth(key))
    assert refused.status_code == 401
    assert _codes(refused) == ["invalid_token"]


def test_one_user_cannot_touch_another_users_key(client, as_user):
    key = _new_key(client, as_user("trader"))
    for response in (client.delete(f"/api/v1/api-keys/{key['id']}", headers=as_user("other_trader")),
                     client.post(f"/api/v1/api-keys/{key['id']}/rotate", headers=as_user("other_trader"))):
        assert response.status_code == 404
        assert _codes(response) == ["not_found"]
    assert client.get("/api/v1/me", headers=_key_auth(key)).status_code == 200


def test_an_administrator_can_revoke_anyones_key(client, as_user):
    key = _new_key(client, as_user("trader"))
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=as_user("admin")).status_code == 200
    assert client.get("/api/v1/me", headers=_key_auth(key)).status_code == 401


def test_an_unknown_key_is_404(client, as_user):
    assert client.delete("/api/v1/api-keys/nope", headers=as_user("trader")).status_code == 404


def test_a_key_needs_a_name(client, as_user):
    response = client.post("/api/v1/api-keys", headers=as_user("trader"), json={"name": ""})
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "name"


def test_the_key_endpoints_do_not_reach_login_tokens(client, as_user, world):
    """Tokens and sessions are credentials too, but not keys: revoking "a key" by a token's id fails."""
    as_user("trader")
    with world.uow.read() as conn:
        token_id = conn.execute(select(credentials.c.id).where(credentials.c.kind == "token")).scalar_one()
    assert client.delete(f"/api/v1/api-keys/{token_id}", headers=as_user("trader")).status_code == 404


def test_every_key_change_is_audited(client, as_user, world):
    key = _new_key(client, as_user("trader"))
    new = client.post(f"/api/v1/api-keys/{key['id']}/rotate", headers=as_user("trader")).json()
    client.delete(f"/api/v1/api-keys/{new['id']}", headers=as_user("trader"))
    with world.uow.read() as conn:
        trail = [(r.action, r.object_id) for r in conn.execute(
            select(audit_log.c.action, audit_log.c.object_id)
            .where(audit_log.c.action.startswith("registry.api_key")).order_by(audit_log.c.id))]
    assert trail == [("registry.api_key_created", key["id"]), ("registry.api_key_rotated", key["id"]),
                     ("registry.api_key_revoked", new["id"])]
