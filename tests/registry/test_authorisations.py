"""Broker authorisations: a trader authorises a customs broker to lodge for it, for a period, and
may revoke it; while it is in force the broker sees the trader's enterprise."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import USCC
from tradewindow.platform.errors import Forbidden, NotFound, ValidationFailed
from tradewindow.platform.settings import get_settings
from tradewindow.registry import service as registry

TODAY = registry.business_today()


def _codes(response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


def _authorise(client, headers, broker_uscc: str = USCC["broker"], valid_from: date = date(2020, 1, 1),
               valid_to: date | None = None):
    body = {"broker_uscc": broker_uscc, "valid_from": valid_from.isoformat()}
    if valid_to is not None:
        body["valid_to"] = valid_to.isoformat()
    return client.post("/api/v1/authorisations", headers=headers, json=body)


def test_a_trader_authorises_a_broker(client, as_user, world):
    response = _authorise(client, as_user("trader"))
    assert response.status_code == 201, response.text
    authorisation = response.json()
    assert authorisation["trader_uscc"] == USCC["trader"]
    assert authorisation["broker_uscc"] == USCC["broker"]
    assert authorisation["active"] is True


def test_only_a_broker_can_be_authorised(client, as_user):
    response = _authorise(client, as_user("trader"), USCC["other_trader"])
    assert response.status_code == 422
    assert [(e["path"], e["code"]) for e in response.json()["errors"]] == [("broker_uscc", "not_a_broker")]


def test_an_unknown_broker_is_refused(client, as_user):
    response = _authorise(client, as_user("trader"), USCC["spare"])
    assert response.status_code == 422
    assert _codes(response) == ["unknown_enterprise"]


def test_an_authorisation_ending_before_it_starts_is_refused(client, as_user):
    response = _authorise(client, as_user("trader"), valid_from=date(2025, 6, 1), valid_to=date(2025, 5, 1))
    assert response.status_code == 422
    assert _codes(response) == ["ends_before_start"]


def test_only_a_trader_authorises_brokers(client, as_user, world):
    assert _authorise(client, as_user("broker")).status_code == 403
    assert _authorise(client, as_user("zone")).status_code == 403
    with pytest.raises(Forbidden):
        registry.authorise_broker(world.uow, world["customs_officer"], USCC["broker"], date(2020, 1, 1))


def test_the_broker_may_act_for_the_trader_only_within_the_dates(world):
    registry.authorise_broker(world.uow, world["trader"], USCC["broker"], date(2025, 1, 1), date(2025, 12, 31))
    broker_id, trader_id = world.enterprises["broker"]["id"], world.enterprises["trader"]["id"]
    assert registry.broker_may_act_for(world.uow, broker_id, trader_id, date(2025, 1, 1))
    assert registry.broker_may_act_for(world.uow, broker_id, trader_id, date(2025, 12, 31))
    assert not registry.broker_may_act_for(world.uow, broker_id, trader_id, date(2024, 12, 31))
    assert not registry.broker_may_act_for(world.uow, broker_id, trader_id, date(2026, 1, 1))
    # Not for another trader, and the authorisation does not work backwards.
    assert not registry.broker_may_act_for(world.uow, broker_id, world.enterprises["other_trader"]["id"],
                                           date(2025, 6, 1))
    assert not registry.broker_may_act_for(world.uow, trader_id, broker_id, date(2025, 6, 1))


def test_a_revoked_authorisation_no_longer_lets_the_broker_act(client, as_user, world, authorised_broker):
    broker_id, trader_id = world.enterprises["broker"]["id"], world.enterprises["trader"]["id"]
    assert registry.broker_may_act_for(world.uow, broker_id, trader_id, TODAY)
    response = client.post(f"/api/v1/authorisations/{authorised_broker['id']}/revoke", headers=as_user("trader"))
    assert response.status_code == 200
    assert response.json()["active"] is False and response.json()["revoked_at"] is not None
    assert not registry.broker_may_act_for(world.uow, broker_id, trader_id, TODAY)


def test_the_broker_sees_the_traders_enterprise_only_while_authorised(client, as_user, world, authorised_broker):
    trader_id = world.enterprises["trader"]["id"]
    assert client.get(f"/api/v1/enterprises/{trader_id}", headers=as_user("broker")).status_code == 200
    listed = client.get("/api/v1/enterprises", headers=as_user("broker")).json()["items"]
    assert {e["uscc"] for e in listed} == {USCC["trader"], USCC["broker"]}
    client.post(f"/api/v1/authorisations/{authorised_broker['id']}/revoke", headers=as_user("trader"))
    assert client.get(f"/api/v1/enterprises/{trader_id}", headers=as_user("broker")).status_code == 404
    listed = client.get("/api/v1/enterprises", headers=as_user("broker")).json()["items"]
    assert [e["uscc"] for e in listed] == [USCC["broker"]]


def test_an_authorisation_that_has_not_started_yet_shows_nothing(client, as_user, world):
    _authorise(client, as_user("trader"), valid_from=TODAY + timedelta(days=30))
    trader_id = world.enterprises["trader"]["id"]
    assert client.get(f"/api/v1/enterprises/{trader_id}", headers=as_user("broker")).status_code == 404


def test_another_trader_cannot_revoke_it(client, as_user, world, authorised_broker):
    response = client.post(f"/api/v1/authorisations/{authorised_broker['id']}/revoke",
                           headers=as_user("other_trader"))
    assert response.status_code == 404
    with pytest.raises(NotFound):
        registry.revoke_broker_authorisation(world.uow, world["other_trader"], authorised_broker["id"])
    assert registry.broker_may_act_for(world.uow, world.enterprises["broker"]["id"],
                                       world.enterprises["trader"]["id"], TODAY)


def test_the_broker_itself_cannot_revoke_it(client, as_user, authorised_broker):
    response = client.post(f"/api/v1/authorisations/{authorised_broker['id']}/revoke", headers=as_user("broker"))
    assert response.status_code == 403


def test_the_zone_authority_can_revoke_it(client, as_user, authorised_broker):
    response = client.post(f"/api/v1/authorisations/{authorised_broker['id']}/revoke", headers=as_user("zone"))
    assert response.status_code == 200


def test_revoking_twice_changes_nothing_more(client, as_user, authorised_broker):
    first = client.post(f"/api/v1/authorisations/{authorised_broker['id']}/revoke", headers=as_user("trader"))
    second = client.post(f"/api/v1/authorisations/{authorised_broker['id']}/revoke", headers=as_user("trader"))
    assert second.status_code == 200
    assert second.json()["revoked_at"] == first.json()["revoked_at"]


def test_the_list_shows_each_side_its_own_authorisations(client, as_user, authorised_broker):
    for username in ("trader", "broker", "zone"):
        items = client.get("/api/v1/authorisations", headers=as_user(username)).json()["items"]
        assert [a["id"] for a in items] == [authorised_broker["id"]], username
    assert client.get("/api/v1/authorisations", headers=as_user("other_trader")).json()["items"] == []


def test_a_withdrawn_broker_cannot_be_authorised(world):
    registry.withdraw_enterprise(world.uow, world["zone"], world.enterprises["broker"]["id"], "Closed")
    with pytest.raises(ValidationFailed) as refused:
        registry.authorise_broker(world.uow, world["other_trader"], USCC["broker"], date(2020, 1, 1))
    assert refused.value.code == "unknown_enterprise"


def test_an_authorisation_starts_on_the_zones_calendar_day_not_the_servers(client, as_user, world, monkeypatch):
    # A zone far enough from UTC that its date differs from the server's right now.
    now = datetime.now(UTC)
    zone = "Pacific/Kiritimati" if now.hour >= 10 else "Pacific/Pago_Pago"    # UTC+14 / UTC-11
    monkeypatch.setenv("TRADEWINDOW_TIME_ZONE", zone)
    get_settings.cache_clear()
    zone_today = now.astimezone(ZoneInfo(zone)).date()
    assert zone_today != now.date()
    authorisation = _authorise(client, as_user("trader"), valid_from=zone_today, valid_to=zone_today).json()
    assert authorisation["active"] is True
    assert client.get(f"/api/v1/enterprises/{world.enterprises['trader']['id']}",
                      headers=as_user("broker")).status_code == 200
