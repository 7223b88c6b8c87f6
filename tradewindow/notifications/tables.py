"""Notification tables: the feed (one row per event and audience enterprise), webhook
subscriptions, their deliveries and the log of every attempt."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from tradewindow.platform.db import Json, UtcDateTime, id_column_type, metadata

notifications = Table(
    "notifications", metadata,
    Column("id", id_column_type(), primary_key=True),
    # The event's position in commit order (outbox feed_seq): the pull feed's cursor.
    Column("feed_seq", BigInteger, nullable=False),
    # The enterprise told; null for an event with no enterprise audience (officers see it).
    Column("enterprise_id", id_column_type()),
    Column("event_id", id_column_type(), nullable=False),
    Column("subject_type", String(50), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("code", String(100), nullable=False),
    Column("message", Text, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    UniqueConstraint("enterprise_id", "feed_seq"),
    Index("ix_notifications_feed_seq", "feed_seq"),
)

webhook_subscriptions = Table(
    "webhook_subscriptions", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("enterprise_id", id_column_type(), nullable=False),
    Column("url", String(2000), nullable=False),
    # Kept in clear because signing needs it; shown to the owner at creation and rotation only.
    Column("secret", String(200), nullable=False),
    Column("codes", Json(), nullable=False),          # filter: ["declaration.*", "webhook.test"]
    Column("description", String(200), nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", id_column_type()),
    Column("secret_rotated_at", UtcDateTime()),
    Column("deactivated_at", UtcDateTime()),
    Index("ix_webhook_subscriptions_enterprise", "enterprise_id", "active"),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("subscription_id", id_column_type(), ForeignKey("webhook_subscriptions.id"), nullable=False),
    Column("enterprise_id", id_column_type(), nullable=False),
    Column("event_id", id_column_type(), nullable=False),
    Column("code", String(100), nullable=False),
    # The body as sent (the same bytes on every retry, so receivers can deduplicate by its id).
    Column("body", Json(), nullable=False),
    Column("status", String(10), nullable=False),     # model.DeliveryStatus
    Column("attempts", Integer, nullable=False, default=0),   # tries since the last (re)delivery
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("next_attempt_at", UtcDateTime()),
    Column("delivered_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("subscription_id", "event_id"),
    Index("ix_webhook_deliveries_subscription", "subscription_id", "created_at"),
)

webhook_attempts = Table(
    "webhook_attempts", metadata,
    Column("id", id_column_type(), primary_key=True),
    Column("delivery_id", id_column_type(), ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("status_code", Integer),
    Column("duration_ms", Integer, nullable=False),
    Column("error", Text),
    Index("ix_webhook_attempts_delivery", "delivery_id", "at"),
)
