"""The start-up filing page: registration, licences applied for and the first user in one form."""

from __future__ import annotations

from tests.conftest import PASSWORD, USCC
from tradewindow.registry import service as registry


def _log_in(client, username: str) -> str:
    client.post("/login", data={"username": username, "password": PASSWORD})
    page = client.get("/enterprises/startup")
    assert page.status_code == 200, page.text[:300]
    return page.text.split('name="csrf_token" value="')[1].split('"')[0]


def _form(csrf: str, **overrides) -> dict:
    form = {"csrf_token": csrf, "client_reference": "SU-1", "uscc": USCC["spare"], "name_zh": "九龙铝业",
            "name_en": "Jiulong Aluminium", "address": "Jiulongpo", "sector": "jiulongpo", "business_scope": "Trade",
            "kinds": "trader", "credit_tier": "general", "licences": ["business_licence"],
            "first_username": "jiulong", "first_role": "trader", "first_password": "a long password 1"}
    form.update(overrides)
    return form


def test_the_zone_files_a_start_up_and_the_licence_waits_for_a_decision(client, world):
    csrf = _log_in(client, "zone")
    response = client.post("/enterprises/startup", data=_form(csrf), follow_redirects=False)
    assert response.status_code == 303, response.text[:500]
    enterprise = registry.enterprise_by_uscc(world.uow, USCC["spare"])
    licences = registry.list_licences(world.uow, world["zone"], enterprise_id=enterprise["id"])
    assert [(lic["licence_type"], lic["status"]) for lic in licences] == [("business_licence", "applied")]


def test_every_problem_is_shown_and_nothing_is_filed(client, world):
    csrf = _log_in(client, "zone")
    response = client.post("/enterprises/startup", data=_form(csrf, uscc="91500115GG37HDHFEB",
                                                              first_password="short"))
    assert response.status_code == 422
    assert "check character does not match" in response.text
    assert "at least 10 characters" in response.text
    assert registry.enterprise_by_uscc(world.uow, USCC["spare"]) is None


def test_a_trader_cannot_open_the_start_up_form(client, world):
    client.post("/login", data={"username": "trader", "password": PASSWORD})
    assert client.get("/enterprises/startup", headers={"accept": "text/html"}).status_code == 403
