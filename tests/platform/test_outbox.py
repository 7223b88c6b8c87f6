"""The outbox and the audit log are written in the business action's own transaction: committed
together with the change, or not at all. The relay numbers committed events in a feed sequence that
consumers page through."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from tradewindow.platform import outbox
from tradewindow.platform.auth import Actor, Role
from tradewindow.platform.outbox import Event, events_after, relay_pending, subscribe, unrelayed_count
from tradewindow.platform.tables import audit_log, outbox_events

OFFICER = Actor(user_id="01ARZ3NDEKTSV4RRFFQ69G5FAV", username="officer", role=Role.CUSTOMS)


@pytest.fixture
def subscribers() -> Iterator[list[tuple[str, object]]]:
    """The module-level subscriber list, restored after the test to what it was before."""
    before = list(outbox._subscribers)
    yield outbox._subscribers
    outbox._subscribers[:] = before


def count(uow, table) -> int:
    with uow.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def emit(uow, n: int, owner: str | None = None) -> list[str]:
    with uow.transaction():
        return [uow.emit("test.thing_happened", "thing", f"T{i}", {"i": i}, owner) for i in range(n)]


def test_an_event_emitted_in_a_committed_transaction_is_stored_unrelayed(uow):
    [event_id] = emit(uow, 1, owner="E1")
    with uow.read() as conn:
        row = conn.execute(select(outbox_events)).mappings().one()
        assert unrelayed_count(conn) == 1
    assert (row["id"], row["event_type"], row["aggregate_id"], row["payload"], row["owner_enterprise_id"]) \
        == (event_id, "test.thing_happened", "T0", {"i": 0}, "E1")
    assert row["feed_seq"] is None and row["relayed_at"] is None


def test_an_event_emitted_in_a_rolled_back_transaction_is_not_there(uow):
    emit(uow, 1)
    with pytest.raises(ValueError, match="refused"), uow.transaction():
        uow.emit("test.thing_happened", "thing", "lost", {})
        uow.emit("test.thing_happened", "thing", "lost-too", {})
        raise ValueError("refused")
    with uow.read() as conn:
        ids = conn.execute(select(outbox_events.c.aggregate_id)).scalars().all()
    assert ids == ["T0"]             # nothing lost, nothing extra


def test_an_audit_record_in_a_rolled_back_transaction_leaves_no_row(uow):
    before = count(uow, audit_log)
    with pytest.raises(ValueError), uow.transaction():
        uow.audit(OFFICER, "test.decided", "thing", "T1", {"status": "lodged"}, {"status": "released"})
        raise ValueError("refused")
    assert count(uow, audit_log) == before


def test_an_audit_record_keeps_who_what_and_from_which_state_to_which(uow):
    with uow.transaction():
        uow.audit(OFFICER, "test.decided", "thing", "T1", {"status": "lodged"}, {"status": "released"})
    with uow.read() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.object_id == "T1")).mappings().one()
    assert (row["actor_user_id"], row["actor_name"], row["action"], row["object_type"]) \
        == (OFFICER.user_id, "officer", "test.decided", "thing")
    assert (row["before"], row["after"]) == ({"status": "lodged"}, {"status": "released"})
    assert row["at"].tzinfo is not None


def test_the_relay_numbers_events_in_order_and_hands_them_to_subscribers(uow, subscribers):
    received: list[Event] = []
    other: list[Event] = []
    subscribe("test.", lambda _uow, event: received.append(event))
    subscribe("elsewhere.", lambda _uow, event: other.append(event))
    ids = emit(uow, 3)

    assert relay_pending(uow) == 3
    assert [e.id for e in received] == ids
    assert [e.feed_seq for e in received] == [1, 2, 3]
    assert other == []
    with uow.read() as conn:
        assert unrelayed_count(conn) == 0
    assert relay_pending(uow) == 0              # nothing is relayed twice
    assert len(received) == 3

    later = emit(uow, 2)
    assert relay_pending(uow) == 2
    assert [(e.id, e.feed_seq) for e in received[3:]] == [(later[0], 4), (later[1], 5)]


def test_the_relay_works_in_batches(uow):
    emit(uow, 5)
    assert relay_pending(uow, batch_size=2) == 2
    assert relay_pending(uow, batch_size=2) == 2
    assert relay_pending(uow, batch_size=2) == 1
    with uow.read() as conn:
        assert [e.feed_seq for e in events_after(conn, 0)] == [1, 2, 3, 4, 5]


def test_a_consumer_pages_through_the_feed_by_cursor(uow):
    ids = emit(uow, 7)
    relay_pending(uow)
    pages, cursor = [], 0
    with uow.read() as conn:
        while page := events_after(conn, cursor, limit=3):
            pages.append([e.id for e in page])
            cursor = page[-1].feed_seq
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == ids


def test_unrelayed_events_are_not_in_the_feed(uow):
    emit(uow, 2)
    with uow.read() as conn:
        assert events_after(conn, 0) == []


def test_the_feed_can_be_limited_to_an_enterprise(uow):
    mine = emit(uow, 2, owner="E1")
    emit(uow, 2, owner="E2")
    relay_pending(uow)
    with uow.read() as conn:
        assert [e.id for e in events_after(conn, 0, owner_enterprise_ids=["E1"])] == mine
        assert events_after(conn, 0, owner_enterprise_ids=[]) == []


def test_a_failing_subscriber_leaves_the_whole_batch_unrelayed(uow, subscribers):
    calls, down = [], [True]

    def flaky(_uow, event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 2 and down[0]:
            raise ConnectionError("statistics store is down")

    subscribe("test.", flaky)
    ids = emit(uow, 3)
    with pytest.raises(ConnectionError):
        relay_pending(uow)
    with uow.read() as conn:
        assert unrelayed_count(conn) == 3
        assert events_after(conn, 0) == []

    calls.clear()
    down[0] = False
    assert relay_pending(uow) == 3           # the next try relays them all, in order
    assert calls == ids
    with uow.read() as conn:
        assert [e.feed_seq for e in events_after(conn, 0)] == [1, 2, 3]


def test_a_subscriber_writes_in_the_relay_transaction(uow, subscribers):
    def audit_it(sub_uow, event: Event) -> None:
        sub_uow.audit(None, "test.relayed", "event", event.id)

    subscribe("test.", audit_it)
    [event_id] = emit(uow, 1)
    relay_pending(uow)
    with uow.read() as conn:
        assert conn.execute(select(audit_log.c.object_id).where(audit_log.c.action == "test.relayed")
                            ).scalars().all() == [event_id]
