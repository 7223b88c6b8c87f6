"""Platform tables: audit log, outbox, job queue, working-day calendar, code lists."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, String, Table, Text

from tradewindow.platform.db import Json, UtcDateTime, id_column_type, metadata

audit_log = Table(
    "audit_log", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor_user_id", id_column_type()),   # null for the system (migrations, the worker)
    Column("actor_name", String(100), nullable=False),
    Column("action", String(100), nullable=False),
    Column("object_type", String(50), nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("before", Json()),
    Column("after", Json()),
    Index("ix_audit_log_object", "object_type", "object_id"),
)

outbox_events = Table(
    "outbox_events", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("aggregate_type", String(50), nullable=False),
    Column("aggregate_id", String(64), nullable=False),
    # The enterprise whose feed the event belongs to (tenancy of the pull feed).
    Column("owner_enterprise_id", id_column_type()),
    Column("payload", Json(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Assigned by the single relay when it publishes the event: a cursor in commit order, which
    # the id (creation order) is not when transactions commit out of order.
    Column("feed_seq", BigInteger, unique=True),
    Column("relayed_at", UtcDateTime()),
    Index("ix_outbox_events_unrelayed", "relayed_at", "id"),
)

jobs = Table(
    "jobs", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("queue", String(50), nullable=False),
    Column("payload", Json(), nullable=False),
    # queued -> running -> done | (failed -> queued again after back-off) | dead after max attempts
    Column("status", String(10), nullable=False),
    Column("dedup_key", String(200), unique=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", UtcDateTime(), nullable=False),
    Column("locked_by", String(100)),
    Column("locked_until", UtcDateTime()),
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Index("ix_jobs_claim", "queue", "status", "run_after"),
)

calendar_days = Table(
    "calendar_days", metadata,
    Column("day", Date, primary_key=True),
    # "holiday": a weekday with no work; "workday": a weekend day worked to make up for a holiday.
    Column("kind", String(10), nullable=False),
    Column("name", String(200), nullable=False),
    Column("updated_by", String(100), nullable=False),
)

code_list_entries = Table(
    "code_list_entries", metadata,
    Column("list_name", String(40), primary_key=True),  # unit, country, currency, transport_mode, location
    Column("code", String(20), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("name_zh", String(200)),
    Column("extra", Json()),
)
