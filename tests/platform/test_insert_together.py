"""Several tables' new rows written at once (`insert_together`, one statement on PostgreSQL): the
rows read back exactly as a statement per table would have written them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select

from tradewindow.platform.db import insert_together
from tradewindow.platform.errors import Conflict
from tradewindow.platform.ids import new_id
from tradewindow.platform.tables import audit_log, jobs, outbox_events

AT = datetime(2026, 3, 1, 7, 30, 15, 123456, tzinfo=UTC)


def _audit(action: str, after: dict | None) -> dict:
    return {"id": new_id(), "at": AT, "actor_user_id": None, "actor_name": "système 'quoted' \"too\"",
            "action": action, "object_type": "thing", "object_id": "T1", "before": None, "after": after}


def _event(n: int) -> dict:
    return {"id": new_id(), "event_type": "test.happened", "aggregate_type": "thing", "aggregate_id": "T1",
            "owner_enterprise_id": None, "created_at": AT,
            "payload": {"n": n, "text": "货物 ✓", "nested": {"list": [1, "2", None, True]}, "none": None}}


def _job() -> dict:
    return {"id": new_id(), "queue": "test", "payload": ["a", {"b": 1.5}], "status": "queued",
            "dedup_key": None, "attempts": 0, "max_attempts": 3, "run_after": AT, "created_at": AT}


def _rows(conn, table) -> list[dict]:
    return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


def test_rows_of_several_tables_read_back_as_written_one_table_at_a_time(uow):
    audits = [_audit("first", {"amount": "12.50", "when": "2026-03-01"}), _audit("second", None)]
    events = [_event(n) for n in range(3)]
    job = _job()
    with uow.transaction() as conn:
        insert_together(conn, [(audit_log, audits), (outbox_events, events), (jobs, [job]), (jobs, [])])
        together = {t.name: _rows(conn, t) for t in (audit_log, outbox_events, jobs)}
    with uow.transaction() as conn:
        for table in (audit_log, outbox_events, jobs):
            conn.execute(table.delete())
        conn.execute(insert(audit_log), audits)
        conn.execute(insert(outbox_events), events)
        conn.execute(insert(jobs), [job])
        one_by_one = {t.name: _rows(conn, t) for t in (audit_log, outbox_events, jobs)}
    assert together == one_by_one
    assert together["audit_log"][1]["after"] is None and together["outbox_events"][0]["created_at"] == AT


def test_a_duplicate_among_rows_written_together_writes_none_of_them(uow):
    event = _event(1)
    with uow.transaction() as conn:
        insert_together(conn, [(outbox_events, [event])])
    with pytest.raises(Conflict) as refused, uow.transaction() as conn:
        insert_together(conn, [(audit_log, [_audit("again", None)]), (outbox_events, [_event(2), event])])
    assert refused.value.code == "duplicate"
    with uow.read() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(outbox_events)).scalar_one() == 1


def test_a_naive_time_among_rows_written_together_is_refused_before_any_is_written(uow):
    """PostgreSQL would read it in the server's time zone: silently wrong. Refused as the UtcDateTime
    column refuses it on the ordinary path, before any table's rows are written."""
    naive = _event(1) | {"created_at": AT.replace(tzinfo=None)}
    with uow.transaction() as conn:
        with pytest.raises(ValueError, match="naive datetime given; use timezone-aware UTC"):
            insert_together(conn, [(audit_log, [_audit("first", None)]), (outbox_events, [_event(2), naive])])
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar_one() == 0
