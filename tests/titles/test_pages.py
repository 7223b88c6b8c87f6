"""The titles pages over HTTP: they act only for a party whose key the platform holds. A party
that keeps its own key (or has none) is shown the command that signs on its own machine and is
refused, clearly, if it posts a form anyway; sea bills are issued and shown like railway bills."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD, USCC
from tests.titles.conftest import bill
from tradewindow.titles import service as titles

HTML = {"Accept": "text/html"}
NUMBER = "CQDUI2026000001"


@pytest.fixture
def log_in(client, titles_world):
    """`log_in(persona)` -> the CSRF token of that persona's session (the cookie stays in the client)."""

    def session(persona: str) -> str:
        client.cookies.clear()
        response = client.post("/login", data={"username": persona, "password": PASSWORD, "next": "/titles"})
        assert response.status_code == 200, response.text
        return re.search(r'name="csrf_token" value="([^"]+)"', response.text)[1]

    return session


def test_a_bank_without_a_custodial_key_is_shown_the_command_not_a_form(client, titles_world, issued, log_in):
    w = titles_world
    titles.pledge(w.uow, w["trader"], NUMBER, USCC["spare"])          # other_bank keeps no key here
    token = log_in("other_bank")
    page = client.get(f"/titles/{NUMBER}", headers=HTML).text
    assert 'id="release-form"' not in page and 'id="sign-yourself"' in page
    assert f"tradewindow titles release {NUMBER} --key KEY" in page and "no signing key" in page

    refused = client.post(f"/titles/{NUMBER}/release-pledge", data={"csrf_token": token}, headers=HTML)
    assert refused.status_code == 422
    assert "sign_with_own_key" in refused.text and f"tradewindow titles release {NUMBER}" in refused.text
    assert titles.get_bill(w.uow, w["trader"], NUMBER)["status"] == "pledged"


def test_a_holder_that_signs_with_its_own_key_is_refused_by_the_page(client, titles_world, issued, log_in):
    w = titles_world
    titles.register_key(w.uow, w["trader"], public_key="11" * 32)    # its own key now: not custodial
    token = log_in("trader")
    page = client.get(f"/titles/{NUMBER}", headers=HTML).text
    assert 'id="endorse-form"' not in page and "signs with its own key" in page
    assert f"tradewindow titles endorse {NUMBER} --to CREDIT_CODE --key KEY" in page
    refused = client.post(f"/titles/{NUMBER}/endorse", data={"csrf_token": token, "to_uscc": USCC["other_trader"]},
                          headers=HTML)
    assert refused.status_code == 422 and "this page cannot sign for you" in refused.text
    assert f"--to {USCC['other_trader']}" in refused.text
    assert titles.get_bill(w.uow, w["trader"], NUMBER)["holder"]["uscc"] == USCC["trader"]


def test_an_outsider_posting_a_form_still_learns_nothing(client, titles_world, issued, log_in):
    token = log_in("other_bank")
    response = client.post(f"/titles/{NUMBER}/void", data={"csrf_token": token}, headers=HTML)
    assert response.status_code == 404


def test_a_carrier_without_a_custodial_key_is_shown_the_issue_command(client, titles_world, log_in):
    titles.register_key(titles_world.uow, titles_world["carrier"], public_key="22" * 32)
    token = log_in("carrier")
    page = client.get("/titles/new", headers=HTML).text
    assert "tradewindow titles issue BILL.json --key KEY" in page and 'name="bol_number"' not in page
    refused = client.post("/titles/new", data={"csrf_token": token, **{k: v for k, v in bill().items()
                                                                       if isinstance(v, str)}}, headers=HTML)
    assert refused.status_code == 422 and "this page cannot sign for you" in refused.text
    assert titles.list_bills(titles_world.uow, titles_world["carrier"])["total"] == 0


def test_a_carrier_issues_a_sea_bill_from_the_page_and_its_parties_see_the_vessel(client, titles_world, log_in):
    token = log_in("carrier")
    form = {"csrf_token": token, "kind": "sea_bill", "bol_number": "COSU6281734012", "shipper_uscc": USCC["trader"],
            "goods_description": "Laptop computers", "packages": "40", "gross_mass_kg": "12850.5",
            "containers": "CSQU3054383", "vessel": "Cosco Shipping Aries", "voyage": "062W",
            "port_of_loading": "CNQZH", "port_of_discharge": "SGSIN"}
    issued = client.post("/titles/new", data=form, headers=HTML, follow_redirects=False)
    assert issued.status_code == 303, issued.text
    log_in("trader")
    page = client.get("/titles/COSU6281734012", headers=HTML).text
    assert "Sea bill of lading" in page and "COSCO SHIPPING ARIES · 062W" in page and 'id="endorse-form"' in page
    assert "sea" in client.get("/titles", headers=HTML).text
