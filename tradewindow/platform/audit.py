"""The audit log: who did what to which object, from which state to which. Written by
`uow.audit(...)` inside the business action's own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection

from tradewindow.platform.bulk import insert_records, insert_text_rows
from tradewindow.platform.db import utcnow
from tradewindow.platform.ids import new_id
from tradewindow.platform.tables import audit_log


def record_audit(conn: Connection, actor: Any, action: str, object_type: str, object_id: str,
                 before: dict | None, after: dict | None) -> None:
    conn.execute(insert(audit_log), audit_record(actor, action, object_type, object_id, before, after))


def audit_record(actor: Any, action: str, object_type: str, object_id: str,
                 before: dict | None = None, after: dict | None = None, record_id: str | None = None) -> dict:
    """One audit row, stamped now, for `record_audits`; `record_id`: its id when made ahead
    (`ids.new_ids`, cheaper by the hundred)."""
    return dict(
        id=record_id or new_id(), at=utcnow(),
        actor_user_id=getattr(actor, "user_id", None),
        actor_name=getattr(actor, "username", None) or "system",
        action=action, object_type=object_type, object_id=object_id,
        before=before, after=after,
    )


def record_audits(conn: Connection, records: list[dict]) -> None:
    """Several audit rows (from `audit_record`) in one statement, in the order given: a hot path
    that writes more than one record per action saves the round trips. Many at once (a stream
    batch's) go by `insert_rows`: one COPY on PostgreSQL instead of a statement per row."""
    insert_records(conn, audit_log, records)


# The columns of `record_audit_rows`' tuples, in order.
AUDIT_COLUMNS = ("id", "at", "actor_user_id", "actor_name", "action", "object_type", "object_id", "before", "after")


def record_audit_rows(conn: Connection, rows: list[tuple]) -> None:
    """Many audit rows given as tuples of AUDIT_COLUMNS' values already in their stored text: the
    time as ISO 8601 text with its offset, `before` and `after` as JSON text (or None). A stream
    batch writes thousands: on PostgreSQL one COPY of `copy_line`s, no value converted per row
    (as dictionaries through `record_audits`, converting them was a tenth of a stream worker's
    CPU); elsewhere `insert_rows`."""
    insert_text_rows(conn, audit_log, AUDIT_COLUMNS, rows)


def audit_writes(records: list[dict]) -> tuple[Table, list[dict]]:
    """Audit rows (from `audit_record`) for `db.insert_together`, with the rows of the change
    they record."""
    return audit_log, records


def audit_trail(conn: Connection, object_type: str, object_id: str) -> list[dict]:
    rows = conn.execute(select(audit_log).where(
        audit_log.c.object_type == object_type, audit_log.c.object_id == object_id,
    ).order_by(audit_log.c.id)).mappings()
    return [dict(r) for r in rows]


def recent_audit(conn: Connection, limit: int = 100, action_prefix: str | None = None) -> list[dict]:
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if action_prefix:
        query = query.where(audit_log.c.action.startswith(action_prefix))
    return [dict(r) for r in conn.execute(query).mappings()]
