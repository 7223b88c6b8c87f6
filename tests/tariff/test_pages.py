"""The tariff pages over HTTP (the browser test drives the same pages in chromium): who may see
them, the htmx fragments, and the calculator's answer without JavaScript."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD

HTML = {"Accept": "text/html"}
HTMX = {"HX-Request": "true"}


@pytest.fixture
def browser_session(client, demo_schedule):
    """`browser_session(persona)` -> the CSRF token of a logged-in session (the cookie stays in the client)."""

    def log_in(persona: str = "trader") -> str:
        response = client.post("/login", data={"username": persona, "password": PASSWORD, "next": "/tax/quote"})
        assert response.status_code == 200, response.text          # followed the redirect
        return re.search(r'name="csrf_token" value="([^"]+)"', response.text)[1]

    return log_in


def test_the_pages_send_a_visitor_to_the_login(client, demo_schedule):
    for path in ("/tariff", "/tariff/lines/87032351", "/tax/quote"):
        response = client.get(path, headers=HTML, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_every_role_finds_the_tariff_and_the_calculator_in_the_menu(client, browser_session):
    browser_session("bank")
    page = client.get("/", headers=HTML).text
    assert '<a href="/tariff"' in page and '<a href="/tax/quote"' in page


def test_the_browser_answers_a_search_with_the_rows_only_when_htmx_asks(client, browser_session):
    browser_session()
    whole = client.get("/tariff", params={"q": "8703", "date": "2025-06-01"}, headers=HTML)
    fragment = client.get("/tariff", params={"q": "8703", "date": "2025-06-01"}, headers={**HTML, **HTMX})
    assert whole.status_code == fragment.status_code == 200
    assert "<html" in whole.text and "<html" not in fragment.text
    assert fragment.text.count("<tr data-code=") == 8
    assert 'href="/tariff/lines/87032351?date=2025-06-01"' in fragment.text
    restored = client.get("/tariff", params={"q": "8703"},
                          headers={**HTML, **HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in restored.text


def test_a_wrong_date_is_said_and_today_is_used(client, browser_session):
    browser_session()
    response = client.get("/tariff", params={"q": "8703", "date": "2025-02-30"}, headers=HTML)
    assert response.status_code == 200
    assert "The date must be written YYYY-MM-DD." in response.text


def test_a_line_page_shows_its_history_and_marks_uncertain_sources(client, browser_session):
    browser_session()
    response = client.get("/tariff/lines/22042100", params={"date": "2023-06-01"}, headers=HTML)
    assert response.status_code == 200
    assert "anti-dumping on origin AU: 218.4 %" in response.text
    assert 'class="badge uncertain"' in response.text and 'class="badge illustrative"' in response.text


def test_an_unknown_line_page_is_404(client, browser_session):
    browser_session()
    assert client.get("/tariff/lines/99999999", headers=HTML).status_code == 404


def test_the_calculator_without_javascript_quotes_and_refuses_with_422(client, browser_session):
    token = browser_session()
    item = {"tariff_code": "87032351", "origin": "DE", "certificate_agreement": "", "certificate_number": "",
            "currency": "USD", "customs_value": "50000.00", "price": "", "incoterm": "CIF", "freight": "",
            "insurance": "", "quantity": "1", "unit": "", "exchange_rate": ""}
    form = {"csrf_token": token, "regime": "general", "date": "2025-01-15", **item}
    quoted = client.post("/tax/quote", data=form, headers=HTML)
    assert quoted.status_code == 200
    assert "53,846.25" in quoted.text and "153,649.19" in quoted.text

    refused = client.post("/tax/quote", data={**form, "customs_value": "-1"}, headers=HTML)
    assert refused.status_code == 422
    assert 'data-field="customs_value"' in refused.text and "must not be negative" in refused.text


def test_the_calculator_needs_the_forms_csrf_token(client, browser_session):
    browser_session()
    response = client.post("/tax/quote", data={"regime": "general", "tariff_code": "87032351"}, headers=HTML)
    assert response.status_code == 403


def test_add_item_returns_one_empty_item_row(client, browser_session):
    browser_session()
    response = client.get("/tax/quote/item", headers={**HTML, **HTMX})
    assert response.status_code == 200
    assert response.text.count('<fieldset class="card quote-item">') == 1
    assert 'name="tariff_code" value=""' in response.text
