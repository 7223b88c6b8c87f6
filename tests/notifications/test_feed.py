"""The pull feed: a cursor in commit order that never misses or repeats a notification, and that
shows each caller only what is theirs."""

from __future__ import annotations

import pytest

from tests.notifications.conftest import notify, relay
from tradewindow.notifications import service
from tradewindow.platform.db import UnitOfWork

pytestmark = pytest.mark.usefixtures("installed")


def read_all(uow, actor, after="0", limit=3) -> list[dict]:
    """Page through the feed to the end, as a client would."""
    seen, cursor = [], after
    while True:
        page = service.notifications_after(uow, actor, cursor, limit)
        if not page["notifications"]:
            assert page["next"] == cursor     # nothing new: the cursor stays
            return seen
        seen.extend(page["notifications"])
        cursor = page["next"]


def test_paging_through_the_feed_returns_every_notification_once_in_order(world):
    uow, trader_id = world.uow, world.enterprises["trader"]["id"]
    ids = [notify(uow, trader_id, subject_id=f"D{i}", number=f"N{i}") for i in range(10)]
    relay(uow)
    seen = read_all(uow, world["trader"], limit=3)
    assert [n["id"] for n in seen] == ids
    assert seen[0] == {"id": ids[0], "declaration_id": "D0", "subject_type": "declaration", "subject_id": "D0",
                       "code": "declaration.accepted", "message": "Declaration N0 was accepted.",
                       "at": seen[0]["at"]}


def test_a_reader_that_keeps_its_cursor_gets_only_what_came_after(world):
    uow, trader_id = world.uow, world.enterprises["trader"]["id"]
    notify(uow, trader_id, subject_id="D1")
    relay(uow)
    first = service.notifications_after(uow, world["trader"], "0")
    later = notify(uow, trader_id, subject_id="D2")
    relay(uow)
    page = service.notifications_after(uow, world["trader"], first["next"])
    assert [n["id"] for n in page["notifications"]] == [later]
    assert service.notifications_after(uow, world["trader"], page["next"])["notifications"] == []


def test_an_unrelayed_event_is_not_in_the_feed_until_the_relay_numbers_it(world):
    uow, trader_id = world.uow, world.enterprises["trader"]["id"]
    notify(uow, trader_id)
    assert service.notifications_after(uow, world["trader"], "0")["notifications"] == []
    relay(uow)
    assert len(service.notifications_after(uow, world["trader"], "0")["notifications"]) == 1


def test_an_event_without_a_notification_is_not_in_the_feed(world):
    uow, trader_id = world.uow, world.enterprises["trader"]["id"]
    with uow.transaction():
        uow.emit("customs.internal_recount", "declaration", "D1", {"n": 1}, trader_id)
    relay(uow)
    assert read_all(uow, world["customs_officer"]) == []


def test_a_subject_that_is_not_a_declaration_has_no_declaration_id(world):
    uow, trader_id = world.uow, world.enterprises["trader"]["id"]
    notify(uow, trader_id, code="bonded.shortage_reported", subject_type="account_book", subject_id="B1")
    relay(uow)
    [n] = read_all(uow, world["trader"])
    assert (n["declaration_id"], n["subject_type"], n["subject_id"]) == (None, "account_book", "B1")


@pytest.mark.postgres   # SQLite serialises writers (BEGIN IMMEDIATE): nothing can commit late there
def test_an_event_that_commits_late_comes_after_the_cursor_it_missed(world, db):
    """Commit order, not start order: A starts first but commits after B was relayed and read."""
    trader, trader_id = world["trader"], world.enterprises["trader"]["id"]
    a, b = UnitOfWork(db), UnitOfWork(db)
    with a.transaction():
        event_a = a.emit("test.a", "declaration", "DA", {"notification": {"code": "declaration.accepted"}}, trader_id)
        with b.transaction():
            event_b = b.emit("test.b", "declaration", "DB", {"notification": {"code": "declaration.accepted"}},
                             trader_id)
        assert event_a < event_b                      # A's id (time-ordered) is the older one
        relay(world.uow)
        first = service.notifications_after(world.uow, trader, "0")
        assert [n["id"] for n in first["notifications"]] == [event_b]
    relay(world.uow)
    second = service.notifications_after(world.uow, trader, first["next"])
    assert [n["id"] for n in second["notifications"]] == [event_a]
    assert [n["id"] for n in read_all(world.uow, trader)] == [event_b, event_a]


# --- tenancy ------------------------------------------------------------------------------------

def test_a_trader_sees_only_its_own_notifications(world):
    uow = world.uow
    mine = notify(uow, world.enterprises["trader"]["id"], subject_id="MINE")
    notify(uow, world.enterprises["other_trader"]["id"], subject_id="THEIRS")
    relay(uow)
    assert [n["id"] for n in read_all(uow, world["trader"])] == [mine]
    assert [n["subject_id"] for n in read_all(uow, world["other_trader"])] == ["THEIRS"]


def test_a_broker_sees_its_principals_notifications_once_and_not_others(world, authorised_broker):
    uow, broker_id = world.uow, world.enterprises["broker"]["id"]
    # Lodged by the broker for the trader: both are told, the broker reads it once.
    both = notify(uow, world.enterprises["trader"]["id"], subject_id="D1", audiences=[broker_id])
    principal = notify(uow, world.enterprises["trader"]["id"], subject_id="D2")
    notify(uow, world.enterprises["other_trader"]["id"], subject_id="D3")
    own = notify(uow, broker_id, code="webhook.test", subject_type="webhook", subject_id="W1")
    relay(uow)
    assert [n["id"] for n in read_all(uow, world["broker"], limit=1)] == [both, principal, own]
    assert [n["id"] for n in read_all(uow, world["trader"])] == [both, principal]


def test_a_broker_without_authorisation_sees_nothing_of_the_trader(world):
    notify(world.uow, world.enterprises["trader"]["id"])
    relay(world.uow)
    assert read_all(world.uow, world["broker"]) == []


def test_an_officer_sees_every_notification_once(world):
    uow, broker_id = world.uow, world.enterprises["broker"]["id"]
    ids = [notify(uow, world.enterprises["trader"]["id"], audiences=[broker_id]),
           notify(uow, world.enterprises["other_trader"]["id"]),
           notify(uow, None, code="webhook.test", subject_type="rule", subject_id="R1")]
    relay(uow)
    assert [n["id"] for n in read_all(uow, world["customs_officer"], limit=2)] == ids
    assert [n["id"] for n in read_all(uow, world["trader"])] == [ids[0]]


def test_a_bank_sees_only_its_own_notifications_though_it_may_look_up_any_enterprise(world):
    notify(world.uow, world.enterprises["trader"]["id"])
    relay(world.uow)
    assert read_all(world.uow, world["bank"]) == []


def test_the_newest_first_page_pages_back_without_gaps(world):
    uow, trader_id = world.uow, world.enterprises["trader"]["id"]
    ids = [notify(uow, trader_id, subject_id=f"D{i}") for i in range(5)]
    relay(uow)
    first = service.recent_notifications(uow, world["trader"], None, limit=2)
    second = service.recent_notifications(uow, world["trader"], first["before"], limit=2)
    third = service.recent_notifications(uow, world["trader"], second["before"], limit=2)
    seen = [n["id"] for page in (first, second, third) for n in page["notifications"]]
    assert seen == list(reversed(ids)) and third["before"] is None


# --- the API ------------------------------------------------------------------------------------

def test_the_feed_api_pages_with_next(world, client, as_user):
    uow, trader_id = world.uow, world.enterprises["trader"]["id"]
    ids = [notify(uow, trader_id, subject_id=f"D{i}") for i in range(3)]
    relay(uow)
    first = client.get("/api/v1/notifications?after=0&limit=2", headers=as_user("trader"))
    assert first.status_code == 200, first.text
    assert [n["id"] for n in first.json()["notifications"]] == ids[:2]
    second = client.get(f"/api/v1/notifications?after={first.json()['next']}&limit=2", headers=as_user("trader"))
    assert [n["id"] for n in second.json()["notifications"]] == ids[2:]
    assert client.get("/api/v1/notifications", headers=as_user("other_trader")).json()["notifications"] == []


def test_the_feed_api_refuses_a_cursor_it_did_not_give(client, as_user):
    response = client.get("/api/v1/notifications?after=abc", headers=as_user("trader"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid_cursor"
    assert client.get("/api/v1/notifications?limit=0", headers=as_user("trader")).status_code == 422


def test_the_feed_api_needs_a_caller(client):
    assert client.get("/api/v1/notifications").status_code == 401
