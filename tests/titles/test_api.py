"""The titles API and pages: who may call each endpoint (the issuer, the holder, an outsider, a
bank, customs), issuing over HTTP, signing with one's own key over HTTP, and the pages' tenancy."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import PASSWORD, USCC
from tests.titles.conftest import bill

NUMBER = "CQDUI2026000001"
N = f"/api/v1/titles/{NUMBER}"

# method, path, body, then persona -> expected status, or (status, code), in the order they are
# tried. The bill was issued by the carrier to the trader; nobody else has touched it. None is a
# caller without credentials.
ENDPOINTS = [
    ("GET", N, None, {"carrier": 200, "trader": 200, "customs_officer": 200, "other_trader": 404, "bank": 404,
                      "zone": (403, "role_not_allowed"), None: 401}),
    ("GET", f"{N}/verify", None, {"carrier": 200, "trader": 200, "customs_officer": 200, "other_trader": 404,
                                  "bank": 404, "quarantine_officer": 403, None: 401}),
    ("POST", f"{N}/prepare", {"action": "endorse", "to_uscc": USCC["other_trader"]},
     {"trader": 200, "carrier": (403, "not_the_holder"), "other_trader": 404, "customs_officer": 403, None: 401}),
    ("POST", f"{N}/endorse", {"to_uscc": USCC["bank"]},
     {"other_trader": 404, "bank": 404, "carrier": (403, "not_the_holder"), "customs_officer": 403, None: 401}),
    ("POST", f"{N}/pledge", {"bank_uscc": USCC["bank"]},
     {"other_trader": 404, "carrier": (403, "not_the_holder"), "bank": 404, "zone": 403}),
    ("POST", f"{N}/release-pledge", None, {"bank": 404, "other_trader": 404, "trader": (409, "not_pledged")}),
    ("POST", f"{N}/take-over", None, {"bank": 404, "carrier": (409, "not_pledged")}),
    ("POST", f"{N}/surrender", None, {"other_trader": 404, "carrier": (403, "not_the_holder"),
                                      "customs_officer": 403}),
    ("POST", f"{N}/void", None, {"other_trader": 404, "trader": (403, "not_the_issuer"), "bank": 404}),
    ("POST", "/api/v1/titles/NO-SUCH-BILL/endorse", {"to_uscc": USCC["bank"]}, {"trader": 404, "carrier": 404}),
    ("POST", "/api/v1/titles/prepare", bill("CQDUI2026000002"),
     {"trader": 403, "bank": 403, "customs_officer": 403, "carrier": 200}),
    ("POST", "/api/v1/titles", bill("CQDUI2026000002"),
     {"trader": 403, "bank": 403, "customs_officer": 403, None: 401, "carrier": 201}),
    ("GET", "/api/v1/titles", None, {"trader": 200, "bank": 200, "customs_officer": 200, "zone": 403, None: 401}),
    ("GET", "/api/v1/titles/heads", None, {"trader": 200, "customs_officer": 200, "zone": 403, None: 401}),
    ("POST", "/api/v1/titles/heads", None, {"trader": 403, "carrier": 403, "customs_officer": 200, "admin": 200}),
    ("GET", "/api/v1/signing-keys", None, {"trader": 200, "customs_officer": 403, "admin": 403, None: 401}),
    ("POST", "/api/v1/signing-keys", {"custodial": True}, {"customs_officer": 403, "admin": 403, None: 401,
                                                           "broker": 201}),
]
CODES = {401: "not_authenticated", 403: "role_not_allowed", 404: "not_found"}


@pytest.fixture
def headers(client, titles_world, as_user):
    def login(persona: str) -> dict[str, str]:
        return as_user(persona)

    return login


@pytest.mark.parametrize(("method", "path", "body", "expected"), ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS])
def test_who_may_call_each_titles_endpoint(client, headers, issued, method, path, body, expected):
    wrong = []
    for persona, want in expected.items():
        status, code = want if isinstance(want, tuple) else (want, CODES.get(want))
        response = client.request(method, path, headers=headers(persona) if persona else {}, json=body)
        got_code = response.json()["errors"][0]["code"] if response.status_code >= 400 else None
        if response.status_code != status or (code is not None and got_code != code):
            wrong.append((persona, status, code, response.status_code, response.text[:200]))
    assert wrong == []


def _numbers(client, headers, persona: str, **params) -> list[str]:
    response = client.get("/api/v1/titles", headers=headers(persona), params=params)
    return [b["bol_number"] for b in response.json()["items"]]


def test_each_caller_lists_the_bills_it_is_party_to(client, headers, titles_world, issued):
    client.post("/api/v1/titles", headers=headers("carrier"),
                json=bill("CQDUI2026000002", shipper_uscc=USCC["other_trader"]))
    client.post(f"{N}/pledge", headers=headers("trader"), json={"bank_uscc": USCC["bank"]})
    assert _numbers(client, headers, "trader") == [NUMBER]
    assert _numbers(client, headers, "other_trader") == ["CQDUI2026000002"]
    assert _numbers(client, headers, "bank") == [NUMBER]
    assert _numbers(client, headers, "carrier") == ["CQDUI2026000002", NUMBER]
    assert _numbers(client, headers, "customs_officer") == ["CQDUI2026000002", NUMBER]
    assert _numbers(client, headers, "customs_officer", status="pledged") == [NUMBER]
    assert _numbers(client, headers, "broker") == []


def test_issuing_over_http_is_idempotent_and_refuses_unknown_fields(client, headers, titles_world):
    first = client.post("/api/v1/titles", headers=headers("carrier"), json=bill())
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/titles", headers=headers("carrier"), json=bill())
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    wrong = client.post("/api/v1/titles", headers=headers("carrier"), json={**bill("CQ-X-1"), "colour": "red"})
    assert wrong.status_code == 422
    assert {(e["path"], e["code"]) for e in wrong.json()["errors"]} == {("colour", "unknown_field")}


def test_a_bank_with_its_own_key_prepares_signs_and_releases_over_http(client, headers, titles_world, issued):
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    registered = client.post("/api/v1/signing-keys", headers=headers("other_bank"), json={"public_key": pem})
    assert registered.status_code == 201 and registered.json()["custodial"] is False
    assert client.post(f"{N}/pledge", headers=headers("trader"), json={"bank_uscc": USCC["spare"]}).status_code == 200

    prepared = client.post(f"{N}/prepare", headers=headers("other_bank"), json={"action": "release_pledge"}).json()
    unsigned = client.post(f"{N}/release-pledge", headers=headers("other_bank"))
    assert (unsigned.status_code, unsigned.json()["errors"][0]["code"]) == (422, "signature_required")
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(base64.b64decode(prepared["canonical_base64"])))
    refused = client.post(f"{N}/release-pledge", headers=headers("other_bank"), json={
        "signed_at": prepared["signed_at"], "previous": prepared["previous"], "signature": forged.decode()})
    assert (refused.status_code, refused.json()["errors"][0]["code"]) == (422, "bad_signature")

    signature = base64.b64encode(private.sign(prepared["canonical"].encode("utf-8"))).decode()
    released = client.post(f"{N}/release-pledge", headers=headers("other_bank"), json={
        "signed_at": prepared["signed_at"], "previous": prepared["previous"], "signature": signature})
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "active" and released.json()["head_hash"] == prepared["hash"]
    report = client.get(f"{N}/verify", headers=headers("customs_officer")).json()
    assert report["valid"] and report["length"] == 3


def test_a_bill_page_shows_its_parties_the_chain_and_hides_it_from_outsiders(client, titles_world, issued):
    def log_in(username: str) -> str:
        client.cookies.clear()
        client.post("/login", data={"username": username, "password": PASSWORD, "next": "/"}, follow_redirects=False)
        page = client.get("/titles", headers={"accept": "text/html"})
        assert page.status_code == 200
        return page.text

    listing = log_in("trader")
    assert NUMBER in listing
    page = client.get(f"/titles/{NUMBER}", headers={"accept": "text/html"})
    assert page.status_code == 200 and "chain verified" in page.text and 'id="endorse-form"' in page.text
    assert NUMBER not in log_in("other_trader")
    assert client.get(f"/titles/{NUMBER}", headers={"accept": "text/html"}).status_code == 404
    log_in("carrier")
    page = client.get(f"/titles/{NUMBER}", headers={"accept": "text/html"})
    assert 'id="void-form"' in page.text and 'id="endorse-form"' not in page.text
