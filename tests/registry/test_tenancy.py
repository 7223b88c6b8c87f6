"""Tenancy, endpoint by endpoint: for each registry endpoint, who may call it (owner, member, officer)
and what an outsider gets — 404 for what exists but is not theirs (its existence is not revealed),
403 for an action their role may not take, 401 without credentials."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, USCC


@pytest.fixture
def ids(world, authorised_broker) -> dict[str, str]:
    """The objects the paths below refer to: the trader's enterprise, another trader's, users, the
    authorisation the trader gave the broker."""
    return {
        "trader": world.enterprises["trader"]["id"],
        "other_trader": world.enterprises["other_trader"]["id"],
        "broker": world.enterprises["broker"]["id"],
        "trader_user": world["trader"].user_id,
        "authorisation": authorised_broker["id"],
    }


ENTERPRISE = {"uscc": USCC["spare"], "sector": "xiyong", "kinds": ["trader"], "name_en": "X"}
LICENCE = {"enterprise_uscc": USCC["trader"], "licence_type": "export_licence", "number": "EL-1",
           "issuer": "MOFCOM", "valid_from": "2025-01-01"}

# method, path, body, then persona -> expected status, in the order they are tried (a call that
# changes something comes last). None is a caller without credentials. The broker holds the
# trader's authorisation.
ENDPOINTS = [
    # One enterprise: the owner and its broker see it; an outsider is told it does not exist.
    ("GET", "/api/v1/enterprises/{trader}", None,
     {"trader": 200, "broker": 200, "customs_officer": 200, "zone": 200, "bank": 200, "other_trader": 404,
      None: 401}),
    ("GET", "/api/v1/enterprises/{other_trader}", None, {"broker": 404, "trader": 404}),
    ("GET", f"/api/v1/enterprises/{USCC['other_trader']}", None, {"trader": 404, "other_trader": 200}),
    ("GET", "/api/v1/enterprises/{broker}", None, {"trader": 200, "other_trader": 404}),
    # Changing an enterprise is the zone authority's, even for the enterprise itself.
    ("PATCH", "/api/v1/enterprises/{trader}", {"address": "Elsewhere"},
     {"trader": 403, "broker": 403, "customs_officer": 403, None: 401, "zone": 200}),
    ("GET", "/api/v1/enterprises/{trader}/obligations", None,
     {"trader": 403, "customs_officer": 403, "zone": 200, "admin": 200}),
    ("POST", "/api/v1/enterprises/{trader}/withdraw", {"reason": "x"},
     {"trader": 403, "broker": 403, "licensing_officer": 403, None: 401}),
    ("POST", "/api/v1/enterprises", ENTERPRISE,
     {"trader": 403, "customs_officer": 403, "bank": 403, None: 401, "admin": 201}),
    # Users are the administrator's.
    ("GET", "/api/v1/users", None,
     {"trader": 403, "zone": 403, "customs_officer": 403, None: 401, "admin": 200}),
    ("POST", "/api/v1/users", {"username": "x", "password": PASSWORD, "role": "admin"},
     {"zone": 403, "trader": 403}),
    ("POST", "/api/v1/users/{trader_user}/password", {"password": "another long secret"},
     {"trader": 403, "zone": 403}),
    ("POST", "/api/v1/users/{trader_user}/unlock", None, {"other_trader": 403, "trader": 403, "admin": 200}),
    ("POST", "/api/v1/users/{trader_user}/active", {"active": True}, {"zone": 403, "admin": 200}),
    ("POST", "/api/v1/users/nobody/unlock", None, {"admin": 404}),
    # Agencies: anyone reads, the administrator creates.
    ("GET", "/api/v1/agencies", None, {"trader": 200, "bank": 200, None: 401}),
    ("POST", "/api/v1/agencies", {"code": "8099", "kind": "customs", "name_en": "X"},
     {"zone": 403, "customs_officer": 403, "admin": 201}),
    # Authorisations: the trader that gave it (or the zone) revokes it; no one else learns of it.
    ("POST", "/api/v1/authorisations", {"broker_uscc": USCC["broker"], "valid_from": "2025-01-01"},
     {"bank": 403, "broker": 403, "zone": 403}),
    ("POST", "/api/v1/authorisations/{authorisation}/revoke", None,
     {"other_trader": 404, "broker": 403, "customs_officer": 403, "trader": 200}),
    # Licences: recorded and decided by the licensing authority and the zone.
    ("POST", "/api/v1/licences", LICENCE, {"trader": 403, "customs_officer": 403, "licensing_officer": 201}),
    ("POST", "/api/v1/licences/nope/decision", {"grant": True}, {"trader": 403, "licensing_officer": 404}),
    ("GET", "/api/v1/licences", None, {None: 401, "bank": 200}),
    ("GET", "/api/v1/api-keys", None, {None: 401, "bank": 200}),
    ("GET", "/api/v1/me", None, {None: 401, "quarantine_officer": 200}),
]

EXPECTED_CODES = {401: "not_authenticated", 403: "role_not_allowed", 404: "not_found"}


@pytest.mark.parametrize(("method", "path", "body", "expected"), ENDPOINTS,
                         ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS])
def test_who_may_call_each_registry_endpoint(client, as_user, ids, method, path, body, expected):
    wrong = []
    for persona, status in expected.items():
        response = client.request(method, path.format(**ids), headers=as_user(persona) if persona else {},
                                  json=body)
        if response.status_code != status or (
                status in EXPECTED_CODES and response.json()["errors"][0]["code"] != EXPECTED_CODES[status]):
            wrong.append((persona, status, response.status_code, response.text[:200]))
    assert wrong == []


# --- lists show each caller only its own ---------------------------------------------------------

def _usccs(client, headers) -> set[str]:
    return {e["uscc"] for e in client.get("/api/v1/enterprises", headers=headers).json()["items"]}


def test_the_enterprise_list_shows_each_caller_its_own(client, as_user, ids):
    assert _usccs(client, as_user("trader")) == {USCC["trader"]}
    assert _usccs(client, as_user("other_trader")) == {USCC["other_trader"]}
    assert _usccs(client, as_user("broker")) == {USCC["broker"], USCC["trader"]}
    everyone = {USCC[k] for k in ("trader", "other_trader", "broker", "bank")}
    for officer in ("customs_officer", "quarantine_officer", "licensing_officer", "zone", "admin"):
        assert _usccs(client, as_user(officer)) == everyone, officer


def test_a_search_does_not_reach_past_tenancy(client, as_user, ids):
    response = client.get("/api/v1/enterprises", headers=as_user("trader"), params={"q": USCC["other_trader"]})
    assert response.json()["items"] == [] and response.json()["total"] == 0


def test_the_licence_list_shows_a_trader_its_own(client, as_user, world, ids):
    for uscc, number in ((USCC["trader"], "L-1"), (USCC["other_trader"], "L-2"), (USCC["broker"], "L-3")):
        client.post("/api/v1/licences", headers=as_user("licensing_officer"), json={
            "enterprise_uscc": uscc, "licence_type": "customs_broker", "number": number, "issuer": "Customs",
            "valid_from": "2025-01-01"})

    def numbers(persona: str, **params: str) -> list[str]:
        items = client.get("/api/v1/licences", headers=as_user(persona), params=params).json()["items"]
        return sorted(lic["number"] for lic in items)

    assert numbers("trader") == ["L-1"]
    assert numbers("other_trader") == ["L-2"]
    assert numbers("broker") == ["L-3"]
    assert numbers("trader", enterprise_id=ids["other_trader"]) == []
    assert numbers("customs_officer") == ["L-1", "L-2", "L-3"]


def test_the_authorisation_list_shows_only_the_parties(client, as_user, ids):
    for persona, expected in (("trader", [ids["authorisation"]]), ("broker", [ids["authorisation"]]),
                              ("other_trader", []), ("zone", [ids["authorisation"]])):
        items = client.get("/api/v1/authorisations", headers=as_user(persona)).json()["items"]
        assert [a["id"] for a in items] == expected, persona


# --- the same rules on the pages -----------------------------------------------------------------

def _log_in(client, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


HTML = {"accept": "text/html"}


def test_a_trader_cannot_open_another_traders_enterprise_page(client, ids):
    _log_in(client, "trader")
    assert client.get(f"/enterprises/{ids['trader']}", headers=HTML).status_code == 200
    assert client.get(f"/enterprises/{ids['other_trader']}", headers=HTML).status_code == 404


def test_a_trader_cannot_open_the_user_administration_nor_the_enterprise_forms(client, ids):
    _log_in(client, "trader")
    assert client.get("/users", headers=HTML).status_code == 403
    assert client.get(f"/enterprises/{ids['trader']}/edit", headers=HTML).status_code == 403
    assert client.get("/enterprises/new", headers=HTML).status_code == 403
    page = client.get("/enterprises", headers=HTML)
    assert USCC["other_trader"] not in page.text and USCC["trader"] in page.text
