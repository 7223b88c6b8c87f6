"""The notification pages: the feed newest first with "load more", and webhooks with the secret
shown once and the delivery log."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.notifications.conftest import notify, relay, run_worker
from tradewindow.notifications import pages
from tradewindow.platform.auth import csrf_token_for
from tradewindow.platform.web import SESSION_COOKIE

pytestmark = pytest.mark.usefixtures("installed")
HTML = {"accept": "text/html"}


@pytest.fixture
def logged_in(client, world):
    def log_in(username: str) -> str:
        client.cookies.clear()
        response = client.post("/login", data={"username": username, "password": PASSWORD},
                               follow_redirects=False)
        assert response.status_code == 303
        return csrf_token_for(client.cookies[SESSION_COOKIE])
    return log_in


def test_the_feed_page_shows_newest_first_and_loads_more(world, client, logged_in, monkeypatch):
    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    for i in range(3):
        notify(world.uow, world.enterprises["trader"]["id"], subject_id=f"D{i}", number=f"N{i}")
    relay(world.uow)
    logged_in("trader")
    page = client.get("/notifications", headers=HTML)
    assert page.status_code == 200
    assert page.text.index("Declaration N2") < page.text.index("Declaration N1")
    assert "Declaration N0" not in page.text
    before = re.search(r'hx-get="/notifications\?before=(\d+)"', page.text).group(1)
    more = client.get(f"/notifications?before={before}", headers={**HTML, "hx-request": "true"})
    assert "Declaration N0" in more.text and "<html" not in more.text and "Load more" not in more.text


def test_the_feed_page_shows_nothing_of_another_enterprise(world, client, logged_in):
    notify(world.uow, world.enterprises["trader"]["id"], number="SECRET-NUMBER")
    relay(world.uow)
    logged_in("other_trader")
    assert "SECRET-NUMBER" not in client.get("/notifications", headers=HTML).text


def test_the_webhooks_page_shows_a_new_secret_once_and_the_delivery_log(world, db, client, logged_in, receiver):
    csrf = logged_in("trader")
    created = client.post("/webhooks", data={"url": receiver.url, "codes": "declaration.* webhook.test",
                                             "csrf_token": csrf}, headers=HTML)
    assert created.status_code == 201
    secret = re.search(r'id="new-secret">(tw_whsec_[^<]+)<', created.text).group(1)
    listing = client.get("/webhooks", headers=HTML)
    assert receiver.url in listing.text and secret not in listing.text
    subscription_id = re.search(r'href="/webhooks/([0-9A-Z]{26})"', listing.text).group(1)

    notify(world.uow, world.enterprises["trader"]["id"], code="declaration.released")
    run_worker(db)
    detail = client.get(f"/webhooks/{subscription_id}", headers=HTML)
    assert detail.status_code == 200
    assert "declaration.released" in detail.text and ">delivered<" in detail.text and "200" in detail.text


def test_the_webhooks_page_explains_a_refused_subscription(client, logged_in):
    csrf = logged_in("trader")
    refused = client.post("/webhooks", data={"url": "not a url", "codes": "*", "csrf_token": csrf}, headers=HTML)
    assert refused.status_code == 422 and "absolute http or https URL" in refused.text


def test_another_enterprise_cannot_open_a_subscriptions_log(world, client, logged_in):
    from tradewindow.notifications import service

    created = service.create_subscription(world.uow, world["trader"], "https://erp.example.com/hook")
    logged_in("other_trader")
    assert client.get(f"/webhooks/{created['id']}", headers=HTML).status_code == 404


def test_webhooks_are_in_the_menu_of_enterprises_not_officers(client, logged_in):
    logged_in("trader")
    assert 'href="/webhooks"' in client.get("/notifications", headers=HTML).text
    logged_in("customs_officer")
    page = client.get("/notifications", headers=HTML)
    assert 'href="/notifications"' in page.text and 'href="/webhooks"' not in page.text
