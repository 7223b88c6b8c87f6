"""Webhook subscriptions through the API: the secret is shown once and never listed, rotation,
deletion, validation, roles and tenancy (one enterprise never sees another's subscriptions or
deliveries)."""

from __future__ import annotations

import pytest

from tests.notifications.conftest import notify, relay
from tradewindow.notifications import service

pytestmark = pytest.mark.usefixtures("installed")

HOOK = "https://erp.example.com/tradewindow"


def subscribe(client, headers, url=HOOK, codes=("declaration.*",)) -> dict:
    response = client.post("/api/v1/webhooks", json={"url": url, "codes": list(codes)}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_creating_a_subscription_shows_its_secret_once(client, as_user):
    created = subscribe(client, as_user("trader"))
    assert created["secret"].startswith("tw_whsec_")
    assert (created["url"], created["codes"], created["active"]) == (HOOK, ["declaration.*"], True)
    listing = client.get("/api/v1/webhooks", headers=as_user("trader"))
    assert listing.status_code == 200
    assert [s["id"] for s in listing.json()["items"]] == [created["id"]]
    single = client.get(f"/api/v1/webhooks/{created['id']}", headers=as_user("trader"))
    for text in (listing.text, single.text):
        assert created["secret"] not in text and '"secret"' not in text


def test_the_secret_never_appears_in_the_audit_log_or_the_pages(world, client, as_user):
    from tradewindow.platform.audit import recent_audit

    created = subscribe(client, as_user("trader"))
    with world.uow.read() as conn:
        assert created["secret"] not in str(recent_audit(conn, limit=50))
    client.post("/login", data={"username": "trader", "password": "correct horse battery"})
    page = client.get("/webhooks", headers={"accept": "text/html"})
    assert page.status_code == 200 and HOOK in page.text and created["secret"] not in page.text


def test_the_secret_is_stored_sealed_never_in_clear(world, client, as_user):
    from tradewindow.notifications.tables import webhook_subscriptions

    created = subscribe(client, as_user("trader"))
    rotated = client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", headers=as_user("trader")).json()
    with world.uow.read() as conn:
        stored = conn.execute(webhook_subscriptions.select()).mappings().one()
    assert stored["secret"].startswith("v1:")
    assert created["secret"] not in str(dict(stored)) and rotated["secret"] not in str(dict(stored))


def test_rotating_the_secret_shows_the_new_one_once(client, as_user):
    created = subscribe(client, as_user("trader"))
    rotated = client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", headers=as_user("trader"))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("tw_whsec_") and rotated.json()["secret"] != created["secret"]
    assert rotated.json()["secret_rotated_at"] is not None
    assert rotated.json()["secret"] not in client.get("/api/v1/webhooks", headers=as_user("trader")).text


def test_a_deleted_subscription_is_no_longer_listed_or_sent_to(world, client, as_user):
    created = subscribe(client, as_user("trader"))
    deleted = client.delete(f"/api/v1/webhooks/{created['id']}", headers=as_user("trader"))
    assert deleted.status_code == 200 and deleted.json()["active"] is False
    assert client.get("/api/v1/webhooks", headers=as_user("trader")).json()["items"] == []
    kept = client.get("/api/v1/webhooks?include_inactive=true", headers=as_user("trader")).json()["items"]
    assert [s["id"] for s in kept] == [created["id"]]
    notify(world.uow, world.enterprises["trader"]["id"])
    relay(world.uow)
    assert client.get(f"/api/v1/webhooks/{created['id']}/deliveries",
                      headers=as_user("trader")).json()["items"] == []
    again = client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", headers=as_user("trader"))
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "subscription_inactive"


def test_a_second_active_subscription_to_the_same_url_is_refused(client, as_user):
    subscribe(client, as_user("trader"))
    response = client.post("/api/v1/webhooks", json={"url": HOOK}, headers=as_user("trader"))
    assert response.status_code == 409 and response.json()["errors"][0]["code"] == "duplicate_subscription"


def test_a_bad_subscription_is_refused_with_every_problem(client, as_user):
    response = client.post("/api/v1/webhooks", json={"url": "javascript:alert(1)", "codes": ["Bad Code"],
                                                     "colour": "red"}, headers=as_user("trader"))
    assert response.status_code == 422
    assert [e["code"] for e in response.json()["errors"]] == ["unknown_field"]
    response = client.post("/api/v1/webhooks", json={"url": "javascript:alert(1)", "codes": ["Bad Code"]},
                           headers=as_user("trader"))
    assert response.status_code == 422
    assert [(e["path"], e["code"]) for e in response.json()["errors"]] == [
        ("url", "invalid_url"), ("codes[0]", "invalid_code_filter")]


@pytest.mark.parametrize("officer", ["customs_officer", "zone", "admin"])
def test_officers_have_no_webhooks(client, as_user, officer):
    response = client.get("/api/v1/webhooks", headers=as_user(officer))
    assert response.status_code == 403 and response.json()["errors"][0]["code"] == "role_not_allowed"
    assert client.post("/api/v1/webhooks", json={"url": HOOK}, headers=as_user(officer)).status_code == 403


def test_another_enterprise_cannot_see_or_touch_a_subscription_or_its_deliveries(world, client, as_user):
    created = subscribe(client, as_user("trader"))
    notify(world.uow, world.enterprises["trader"]["id"])
    relay(world.uow)
    [delivery] = client.get(f"/api/v1/webhooks/{created['id']}/deliveries",
                            headers=as_user("trader")).json()["items"]
    for who in ("other_trader", "broker"):
        headers = as_user(who)
        assert client.get("/api/v1/webhooks", headers=headers).json()["items"] == []
        for method, path in [("get", f"/api/v1/webhooks/{created['id']}"),
                             ("post", f"/api/v1/webhooks/{created['id']}/rotate-secret"),
                             ("delete", f"/api/v1/webhooks/{created['id']}"),
                             ("get", f"/api/v1/webhooks/{created['id']}/deliveries"),
                             ("post", f"/api/v1/webhooks/deliveries/{delivery['id']}/redeliver")]:
            response = client.request(method, path, headers=headers)
            assert response.status_code == 404, (who, path, response.text)
            assert response.json()["errors"][0]["code"] == "not_found"
    assert client.get(f"/api/v1/webhooks/{created['id']}", headers=as_user("trader")).json()["active"] is True


def test_a_delivery_is_queued_only_for_matching_active_subscriptions_of_the_audience(world, client, as_user):
    declarations = subscribe(client, as_user("trader"), "https://a.example.com/", ["declaration.*"])
    bonded = subscribe(client, as_user("trader"), "https://b.example.com/", ["bonded.*"])
    other = subscribe(client, as_user("other_trader"), "https://c.example.com/", ["*"])
    notify(world.uow, world.enterprises["trader"]["id"], code="declaration.released")
    relay(world.uow)

    def deliveries(sub, who):
        return client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=as_user(who)).json()["items"]

    [queued] = deliveries(declarations, "trader")
    assert (queued["status"], queued["code"], queued["attempts"]) == ("pending", "declaration.released", 0)
    assert deliveries(bonded, "trader") == [] and deliveries(other, "other_trader") == []


def test_the_delivery_log_refuses_an_unknown_status_filter(client, as_user):
    created = subscribe(client, as_user("trader"))
    response = client.get(f"/api/v1/webhooks/{created['id']}/deliveries?status=lost", headers=as_user("trader"))
    assert response.status_code == 422 and response.json()["errors"][0]["code"] == "invalid_choice"


def test_a_delivery_still_being_tried_cannot_be_redelivered(world):
    created = service.create_subscription(world.uow, world["trader"], HOOK)
    notify(world.uow, world.enterprises["trader"]["id"])
    relay(world.uow)
    [delivery] = service.list_deliveries(world.uow, world["trader"], created["id"])["items"]
    from tradewindow.platform.errors import Conflict

    with pytest.raises(Conflict) as refused:
        service.redeliver(world.uow, world["trader"], delivery["id"])
    assert refused.value.code == "delivery_in_progress"


def test_a_subscription_to_a_cloud_metadata_address_is_refused(client, as_user):
    response = client.post("/api/v1/webhooks", headers=as_user("trader"),
                           json={"url": "http://169.254.169.254/latest/meta-data/", "codes": ["*"]})
    assert response.status_code == 422
    assert [(e["path"], e["code"]) for e in response.json()["errors"]] == [("url", "private_address")]
