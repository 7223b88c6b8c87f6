"""Licences held by an enterprise: recorded by the licensing authority, or applied for in a start-up
filing and then decided; later declarations check them by type, number and date."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import USCC, enterprise_input
from tradewindow.platform.errors import Conflict, Forbidden
from tradewindow.registry import service as registry


def _licence(**overrides) -> dict:
    return {"enterprise_uscc": USCC["trader"], "licence_type": "automatic_import_licence",
            "number": "25-AIL-500-000127", "issuer": "Ministry of Commerce", "valid_from": "2025-01-01",
            "valid_to": "2025-12-31", **overrides}


def _errors(response) -> set[tuple[str, str]]:
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


def _applied(world, *licence_types: str) -> dict:
    """A start-up filing that applies for licences; returns the filing."""
    return registry.start_up_enterprise(world.uow, world["zone"], "startup-licences",
                                        enterprise_input(USCC["spare"], "New Importer"), list(licence_types))


def test_a_licensing_officer_records_a_licence(client, as_user, world):
    response = client.post("/api/v1/licences", headers=as_user("licensing_officer"), json=_licence())
    assert response.status_code == 201, response.text
    licence = response.json()
    assert licence["status"] == "granted"
    assert licence["enterprise_id"] == world.enterprises["trader"]["id"]
    assert licence["valid_from"] == "2025-01-01"


@pytest.mark.parametrize("username", ["trader", "broker", "customs_officer", "bank"])
def test_others_may_not_record_licences(client, as_user, username):
    assert client.post("/api/v1/licences", headers=as_user(username), json=_licence()).status_code == 403


def test_every_problem_of_a_licence_is_reported_at_once_and_nothing_stored(client, as_user, world):
    response = client.post("/api/v1/licences", headers=as_user("licensing_officer"), json=_licence(
        enterprise_uscc=USCC["spare"], licence_type="fishing_licence", number=" ",
        valid_from="2025-06-01", valid_to="2025-01-01"))
    assert response.status_code == 422
    assert _errors(response) == {("enterprise_uscc", "unknown_enterprise"),
                                 ("licence_type", "unknown_licence_type"), ("number", "required"),
                                 ("valid_to", "ends_before_start")}
    assert registry.list_licences(world.uow, world["licensing_officer"]) == []


def test_a_malformed_date_is_refused(client, as_user):
    response = client.post("/api/v1/licences", headers=as_user("licensing_officer"),
                           json=_licence(valid_from="first of May"))
    assert response.status_code == 422
    assert ("valid_from", "invalid_date") in _errors(response)


def test_the_same_licence_number_cannot_be_recorded_twice(client, as_user, world):
    client.post("/api/v1/licences", headers=as_user("licensing_officer"), json=_licence())
    response = client.post("/api/v1/licences", headers=as_user("licensing_officer"),
                           json=_licence(enterprise_uscc=USCC["other_trader"]))
    assert response.status_code == 409
    assert _errors(response) == {("number", "duplicate")}
    assert len(registry.list_licences(world.uow, world["licensing_officer"])) == 1
    # The same number under another licence type is another licence.
    other_type = client.post("/api/v1/licences", headers=as_user("licensing_officer"),
                             json=_licence(licence_type="export_licence"))
    assert other_type.status_code == 201


def test_a_trader_lists_only_its_own_licences(client, as_user, world):
    client.post("/api/v1/licences", headers=as_user("licensing_officer"), json=_licence())
    client.post("/api/v1/licences", headers=as_user("licensing_officer"),
                json=_licence(enterprise_uscc=USCC["other_trader"], number="25-AIL-500-000999"))
    mine = client.get("/api/v1/licences", headers=as_user("trader")).json()["items"]
    assert [lic["number"] for lic in mine] == ["25-AIL-500-000127"]
    # Asking for another enterprise's licences by id shows nothing either.
    theirs = client.get("/api/v1/licences", headers=as_user("trader"),
                        params={"enterprise_id": world.enterprises["other_trader"]["id"]}).json()["items"]
    assert theirs == []
    assert len(client.get("/api/v1/licences", headers=as_user("customs_officer")).json()["items"]) == 2


def test_a_licence_is_valid_only_within_its_dates(world):
    licence = registry.record_licence(world.uow, world["licensing_officer"], USCC["trader"],
                                      "automatic_import_licence", "AIL-1", "MOFCOM",
                                      date(2025, 1, 1), date(2025, 12, 31))
    trader_id = world.enterprises["trader"]["id"]

    def valid(on: date) -> dict | None:
        return registry.valid_licence(world.uow, trader_id, "automatic_import_licence", "AIL-1", on)

    assert valid(date(2025, 1, 1))["id"] == licence["id"]
    assert valid(date(2025, 12, 31)) is not None
    assert valid(date(2024, 12, 31)) is None
    assert valid(date(2026, 1, 1)) is None
    assert registry.valid_licence(world.uow, world.enterprises["other_trader"]["id"], "automatic_import_licence",
                                  "AIL-1", date(2025, 6, 1)) is None
    assert registry.valid_licence(world.uow, trader_id, "import_licence", "AIL-1", date(2025, 6, 1)) is None


def test_a_licence_without_end_date_stays_valid(world):
    registry.record_licence(world.uow, world["licensing_officer"], USCC["trader"], "business_licence", "BL-1",
                            "SAMR", date(2020, 1, 1))
    assert registry.valid_licence(world.uow, world.enterprises["trader"]["id"], "business_licence", "BL-1",
                                  date(2040, 1, 1)) is not None


def test_a_licence_applied_for_is_not_valid_until_granted(client, as_user, world):
    filing = _applied(world, "import_licence")
    applied = filing["licences"][0]
    assert applied["status"] == "applied"
    enterprise_id = filing["enterprise"]["id"]
    today = registry.business_today()     # the zone's day, on which the application was made
    assert registry.valid_licence(world.uow, enterprise_id, "import_licence", applied["number"], today) is None
    response = client.post(f"/api/v1/licences/{applied['id']}/decision", headers=as_user("licensing_officer"),
                           json={"grant": True, "number": "IL-2025-0001"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "granted" and response.json()["issuer"] == "licensing_officer"
    assert registry.valid_licence(world.uow, enterprise_id, "import_licence", "IL-2025-0001", today)


def test_a_refusal_needs_a_reason(client, as_user, world):
    applied = _applied(world, "import_licence")["licences"][0]
    url = f"/api/v1/licences/{applied['id']}/decision"
    response = client.post(url, headers=as_user("licensing_officer"), json={"grant": False})
    assert response.status_code == 422
    assert _errors(response) == {("reason", "required")}
    refused = client.post(url, headers=as_user("licensing_officer"),
                          json={"grant": False, "reason": "Quota exhausted"})
    assert refused.status_code == 200
    assert refused.json()["status"] == "refused" and refused.json()["decision_reason"] == "Quota exhausted"


def test_a_licence_is_decided_once(client, as_user, world):
    applied = _applied(world, "import_licence")["licences"][0]
    url = f"/api/v1/licences/{applied['id']}/decision"
    client.post(url, headers=as_user("licensing_officer"), json={"grant": True})
    again = client.post(url, headers=as_user("licensing_officer"), json={"grant": False, "reason": "Oops"})
    assert again.status_code == 409
    assert _errors(again) == {("", "already_decided")}


def test_a_grant_ending_before_the_licence_starts_is_refused(client, as_user, world):
    applied = _applied(world, "import_licence")["licences"][0]
    response = client.post(f"/api/v1/licences/{applied['id']}/decision", headers=as_user("licensing_officer"),
                           json={"grant": True, "valid_to": "2000-01-01"})
    assert response.status_code == 422
    assert _errors(response) == {("valid_to", "ends_before_start")}
    assert registry.list_licences(world.uow, world["licensing_officer"], status="applied") != []


def test_the_start_up_filing_completes_when_its_last_licence_is_decided(world):
    filing = _applied(world, "import_licence", "bonded_warehouse")
    assert filing["completed_at"] is None
    first, second = filing["licences"]
    registry.decide_licence(world.uow, world["licensing_officer"], first["id"], grant=True)
    repeat = registry.start_up_enterprise(world.uow, world["zone"], "startup-licences",
                                          enterprise_input(USCC["spare"]), [])
    assert repeat["completed_at"] is None
    registry.decide_licence(world.uow, world["licensing_officer"], second["id"], grant=False, reason="No site yet")
    repeat = registry.start_up_enterprise(world.uow, world["zone"], "startup-licences",
                                          enterprise_input(USCC["spare"]), [])
    assert repeat["completed_at"] is not None


def test_only_licensing_officers_and_the_zone_decide(client, as_user, world):
    applied = _applied(world, "import_licence")["licences"][0]
    for username in ("trader", "customs_officer"):
        response = client.post(f"/api/v1/licences/{applied['id']}/decision", headers=as_user(username),
                               json={"grant": True})
        assert response.status_code == 403
    with pytest.raises(Forbidden):
        registry.decide_licence(world.uow, world["trader"], applied["id"], grant=True)


def test_an_unknown_licence_is_404(client, as_user):
    response = client.post("/api/v1/licences/nope/decision", headers=as_user("licensing_officer"),
                           json={"grant": True})
    assert response.status_code == 404


def test_granting_under_a_number_already_taken_is_a_conflict(world):
    registry.record_licence(world.uow, world["licensing_officer"], USCC["trader"], "import_licence", "IL-7",
                            "MOFCOM", date(2025, 1, 1))
    applied = _applied(world, "import_licence")["licences"][0]
    with pytest.raises(Conflict):
        registry.decide_licence(world.uow, world["licensing_officer"], applied["id"], grant=True, number="IL-7")
    assert registry.list_licences(world.uow, world["licensing_officer"], status="applied")[0]["id"] == applied["id"]
