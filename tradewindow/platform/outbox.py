"""The outbox: every state change appends a domain event in its own transaction; the worker's
relay publishes committed events to subscribers (notifications, webhooks, statistics) in order.

Consumers never poll business tables; they read events. The relay is the only writer of
`feed_seq`, so the sequence is the order in which events became visible, a cursor that a pull
feed can page through without missing a late-committing transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.engine import Connection

from tradewindow.platform.bulk import insert_records, insert_text_rows
from tradewindow.platform.db import UnitOfWork, utcnow
from tradewindow.platform.ids import new_id
from tradewindow.platform.tables import outbox_events


@dataclass(frozen=True)
class Event:
    id: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    owner_enterprise_id: str | None
    payload: dict[str, Any]
    created_at: datetime
    feed_seq: int | None


Subscriber = Callable[[UnitOfWork, Event], None]
_subscribers: list[tuple[str, Subscriber]] = []


def subscribe(event_type_prefix: str, handler: Subscriber) -> None:
    """Register a consumer of relayed events (called at start-up by the contexts that consume)."""
    _subscribers.append((event_type_prefix, handler))


def append_event(conn: Connection, event_type: str, aggregate_type: str, aggregate_id: str,
                 payload: dict, owner_enterprise_id: str | None) -> str:
    row = event_record(event_type, aggregate_type, aggregate_id, payload, owner_enterprise_id)
    conn.execute(insert(outbox_events), row)
    return row["id"]


def event_record(event_type: str, aggregate_type: str, aggregate_id: str, payload: dict,
                 owner_enterprise_id: str | None = None, record_id: str | None = None) -> dict:
    """One outbox row, with its id and stamped now, for `append_events`; `record_id`: its id when
    made ahead (`ids.new_ids`, in order, cheaper by the hundred)."""
    return dict(id=record_id or new_id(), event_type=event_type, aggregate_type=aggregate_type,
                aggregate_id=aggregate_id, owner_enterprise_id=owner_enterprise_id,
                payload=payload, created_at=utcnow())


def append_events(conn: Connection, records: list[dict]) -> None:
    """Several events (from `event_record`) in one statement; their ids keep the order given, so
    the relay publishes them in that order (it numbers them after the commit, as any others).
    Many at once go by `insert_rows` (one COPY on PostgreSQL)."""
    insert_records(conn, outbox_events, records)


# The columns of `append_event_rows`' tuples, in order.
EVENT_COLUMNS = ("id", "event_type", "aggregate_type", "aggregate_id", "owner_enterprise_id", "payload", "created_at")


def append_event_rows(conn: Connection, rows: list[tuple]) -> None:
    """Many events given as tuples of EVENT_COLUMNS' values already in their stored text (the
    payload as JSON text, the time as ISO 8601 text with its offset), ids in the order to keep:
    on PostgreSQL one COPY of `copy_line`s, no value converted per row; elsewhere `insert_rows`."""
    insert_text_rows(conn, outbox_events, EVENT_COLUMNS, rows)


def event_writes(records: list[dict]) -> tuple[Table, list[dict]]:
    """Events (from `event_record`) for `db.insert_together`, with the rows of the change they
    announce; as with `append_events`, their ids keep the order given."""
    return outbox_events, records


def relay_pending(uow: UnitOfWork, batch_size: int = 500) -> int:
    """Publish a batch of committed, unrelayed events: number them and hand each to the
    subscribers, in one transaction (a subscriber's failure leaves the batch for the next try)."""
    with uow.transaction() as conn:
        rows = conn.execute(   # locked: two relays must not number the same event twice
            uow.locking(select(outbox_events).where(outbox_events.c.relayed_at.is_(None))
                        .order_by(outbox_events.c.id).limit(batch_size))
        ).mappings().all()
        if not rows:
            return 0
        next_seq = (conn.execute(select(func.max(outbox_events.c.feed_seq))).scalar() or 0) + 1
        now = utcnow()
        for offset, row in enumerate(rows):
            seq = next_seq + offset
            conn.execute(update(outbox_events).where(outbox_events.c.id == row["id"])
                         .values(feed_seq=seq, relayed_at=now))
            event = _event({**row, "feed_seq": seq})
            for prefix, handler in _subscribers:
                if event.event_type.startswith(prefix):
                    handler(uow, event)
        return len(rows)


def events_after(conn: Connection, after_seq: int, limit: int = 100,
                 owner_enterprise_ids: list[str] | None = None) -> list[Event]:
    query = (select(outbox_events).where(outbox_events.c.feed_seq > after_seq)
             .order_by(outbox_events.c.feed_seq).limit(limit))
    if owner_enterprise_ids is not None:
        query = query.where(outbox_events.c.owner_enterprise_id.in_(owner_enterprise_ids))
    return [_event(r) for r in conn.execute(query).mappings()]


def unrelayed_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(outbox_events)
                        .where(outbox_events.c.relayed_at.is_(None))).scalar_one()


def _event(row: Any) -> Event:
    return Event(id=row["id"], event_type=row["event_type"], aggregate_type=row["aggregate_type"],
                 aggregate_id=row["aggregate_id"], owner_enterprise_id=row["owner_enterprise_id"],
                 payload=row["payload"], created_at=row["created_at"], feed_seq=row["feed_seq"])
